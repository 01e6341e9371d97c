#pragma once
// A Unix time as UTC text in a strftime format: cron reasons, mail dates,
// SigV4 dates.
#include <cstdint>
#include <ctime>
#include <string>

namespace kiln {

inline std::string utc_text(std::int64_t unix_s, const char* format) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, format, &tm);
  return {buf, n};
}

} // namespace kiln
