#pragma once
// A cron trigger's `schedule:` (kiln extension, issue 7): five fields
// "minute hour day-of-month month day-of-week" with `*`, lists, ranges,
// steps and names (jan-dec, sun-sat; 7 is Sunday too), or one of @hourly,
// @daily (@midnight), @weekly, @monthly, @yearly (@annually); six fields
// put a seconds field first ("*/5 * * * * *": every 5 s). Times are UTC
// unless the schedule starts with CRON_TZ=<zone> (as in cronie): then the
// fields are the zone's wall clock; a time that a DST change skips does
// not fire, one it repeats fires once. Pure but for reading the zone from
// the tz database when parsing.
#include "actors/time_zone.hpp"
#include "events/result.hpp"

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::domain {

class cron_schedule {
 public:
  // An error names the field and what is wrong with it.
  static result<cron_schedule> parse(std::string_view text);
  const time_zone& zone() const { return zone_; }

  // The first matching second strictly after `unix_seconds`, in seconds
  // since the epoch; -1 if none within eight years (e.g. 30 Feb).
  std::int64_t next_after(std::int64_t unix_seconds) const;
  // The last matching second at or before `unix_seconds`; -1 if none
  // within eight years.
  std::int64_t last_at_or_before(std::int64_t unix_seconds) const;

 private:
  std::int64_t scan(std::int64_t from, int direction) const;  // in wall-clock seconds
  std::int64_t find(std::int64_t from_utc, int direction) const;
  static result<cron_schedule> parse_fields(std::string_view text);

  time_zone zone_;
  bool day_matches(std::int64_t day) const;

  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0 = Sunday
  // As in Vixie cron: when both day fields are restricted, either matches.
  bool any_day_ = true, any_weekday_ = true;
};

} // namespace kiln::domain
