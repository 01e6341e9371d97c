#include "events/subjects.hpp"

#include "events/streams.hpp"

#include <vector>

namespace kiln::subjects {

std::string token(std::string_view name) {
  if (name.empty())
    return "-";
  std::string out{name};
  for (auto& c : out)
    if (c == '.' || c == '*' || c == '>' || std::isspace(static_cast<unsigned char>(c)))
      c = '_';
  return out;
}

std::string event_path(const stream_id& stream, std::string_view type) {
  // Streams are kind/part/part…: project/p, build/p/n, run/p/n/name.
  std::vector<std::string_view> parts;
  std::string_view rest = stream.value;
  auto kind = streams::kind_of(stream);
  if (kind == "project" || kind == "build" || kind == "run") {
    rest.remove_prefix(std::min(rest.size(), kind.size() + 1));
    for (int i = 0; i < 2 && !rest.empty(); ++i) {
      auto slash = rest.find('/');
      parts.push_back(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    if (!rest.empty())
      parts.push_back(rest);  // a run's name is the rest
  }
  std::string out;
  for (std::size_t i = 0; i < 3; ++i) {
    out += token(i < parts.size() ? parts[i] : std::string_view{});
    out += '.';
  }
  out += token(type);
  return out;
}

std::string event_subject(const stream_id& stream, std::string_view type) {
  return "kiln.evt." + event_path(stream, type);
}

std::string console_subject(std::string_view project, std::uint32_t build, std::string_view run) {
  return "kiln.log." + token(project) + "." + std::to_string(build) + "." + token(run);
}

std::string frame(std::string_view header, std::string_view bytes) {
  std::string out;
  out.reserve(header.size() + 1 + bytes.size());
  out += header;
  out += '\n';
  out += bytes;
  return out;
}

std::pair<std::string_view, std::string_view> unframe(std::string_view message) {
  auto nl = message.find('\n');
  if (nl == std::string_view::npos)
    return {message, {}};
  return {message.substr(0, nl), message.substr(nl + 1)};
}

namespace {

// `prefix` then each '/'-separated part of `path` as a token, losslessly.
std::string escaped_tokens(std::string_view prefix, std::string_view path) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out{prefix};
  std::string_view rest = path;
  for (bool first = true;; first = false) {
    auto slash = rest.find('/');
    auto part = rest.substr(0, slash);
    if (!first)
      out += '.';
    if (part.empty())
      out += '~';
    for (unsigned char c : part) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
          || c == '_') {
        out += static_cast<char>(c);
      } else {
        out += '~';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    if (slash == std::string_view::npos)
      return out;
    rest.remove_prefix(slash + 1);
  }
}

} // namespace

std::string log_subject(const stream_id& stream) { return escaped_tokens("kiln.es.", stream.value); }

std::string console_copy_subject(std::string_view run) { return escaped_tokens("kiln.con.", run); }

} // namespace kiln::subjects
