#include "events/base64.hpp"

namespace kiln {

namespace {
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}
} // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  auto byte = [&](std::size_t i) { return unsigned(static_cast<unsigned char>(in[i])); };
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6)
      out += alphabet[(n >> shift) & 63];
  }
  if (auto rest = in.size() - i; rest > 0) {
    auto n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0u);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=')
      return std::nullopt;  // "x=y=" is not padding
    unsigned n = 0;
    for (int k = 0; k < 4 - pad; ++k) {
      int v = value_of(in[i + k]);
      if (v < 0)
        return std::nullopt;
      n = n << 6 | unsigned(v);
    }
    n <<= 6 * pad;
    // Canonical only: the bits padding drops must be zero.
    if ((pad == 1 && (n & 0xff)) || (pad == 2 && (n & 0xffff)))
      return std::nullopt;
    out += static_cast<char>(n >> 16);
    if (pad < 2)
      out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1)
      out += static_cast<char>(n & 0xff);
  }
  return out;
}

} // namespace kiln
