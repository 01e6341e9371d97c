#pragma once
// A named time zone from the system's tz database (/usr/share/zoneinfo,
// Debian's tzdata), for cron schedules written in local time. Only the
// UTC offset at an instant is needed; past the file's last transition
// (2037 in Debian's files) the last offset holds.
#include "events/result.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::domain {

class time_zone {
 public:
  static time_zone utc() { return {}; }
  // "Europe/Berlin"; error "invalid_definition" naming an unknown zone.
  static result<time_zone> load(const std::string& name);

  // Seconds east of UTC at the instant `unix_s`.
  int offset_at(std::int64_t unix_s) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // ascending instants
  std::vector<int> offsets_;               // the offset from each transition on
  int initial_ = 0;                        // before the first transition
};

} // namespace kiln::domain
