#include "events/event.hpp"
#include "events/commit.hpp"

namespace kiln {

std::string_view to_string(status s) {
  switch (s) {
    case status::queued: return "QUEUED";
    case status::running: return "RUNNING";
    case status::passed: return "PASSED";
    case status::failed: return "FAILED";
    case status::cancelled: return "CANCELLED";
    case status::timeout: return "TIMEOUT";
    case status::lost: return "LOST";
    case status::skipped: return "SKIPPED";
  }
  return "UNKNOWN";
}

std::optional<status> status_from_string(std::string_view name) {
  for (auto s : {status::queued, status::running, status::passed, status::failed,
                 status::cancelled, status::timeout, status::lost, status::skipped})
    if (to_string(s) == name)
      return s;
  return std::nullopt;
}

std::string_view type_name(const event& e) {
  return std::visit([](auto& x) { return std::decay_t<decltype(x)>::type_name; }, e);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

std::string to_hex(const digest& d) {
  return to_hex(std::string_view{reinterpret_cast<const char*>(d.data()), d.size()});
}

} // namespace kiln
