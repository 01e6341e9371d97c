#include "gateway/url.hpp"

#include <charconv>

namespace kiln::gateway {

namespace {

error bad(std::string message) { return {"bad_request", std::move(message)}; }

int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

result<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return bad("a '%' escape needs two hex digits");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0')
      return bad("a NUL byte in the URL");
    out.push_back(c);
  }
  return out;
}

} // namespace

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

result<parsed_target> parse_target(std::string_view target) {
  parsed_target out;
  auto q = target.find('?');
  auto path = target.substr(0, q);
  if (path.empty() || path.front() != '/')
    return bad("the path must start with '/'");
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    auto raw = path.substr(start, end - start);
    auto seg = decode(raw, false);
    if (!seg)
      return seg.error();
    if (*seg == "." || *seg == "..")
      return bad("'.' and '..' are not allowed in a path");
    if (!seg->empty() || end < path.size())
      out.segments.push_back(std::move(*seg));
    start = end + 1;
  }
  if (q != std::string_view::npos) {
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      auto pair = rest.substr(0, amp);
      auto eq = pair.find('=');
      auto k = decode(pair.substr(0, eq), true);
      auto v = decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
      if (!k)
        return k.error();
      if (!v)
        return v.error();
      if (!k->empty())
        out.query.emplace(std::move(*k), std::move(*v));
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
  }
  return out;
}

result<std::string> artifact_path(std::string_view path) {
  if (path.empty())
    return bad("an artifact needs a path");
  if (path.size() > 1024)
    return bad("an artifact path is at most 1024 bytes");
  if (path.front() == '/')
    return bad("an artifact path is relative to the run's folder");
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    auto part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return bad("artifact path '" + std::string{path} + "' leaves or blurs the run's folder");
    if (part.find('\\') != std::string_view::npos || part.find('\0') != std::string_view::npos)
      return bad("artifact path '" + std::string{path} + "' holds a backslash or NUL");
    start = end + 1;
  }
  return std::string{path};
}

} // namespace kiln::gateway
