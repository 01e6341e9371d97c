// Cron schedules, pure: parsing and the next slot (UTC).
#include "actors/cron_schedule.hpp"
#include "actors/project_definition.hpp"

#include <catch2/catch.hpp>

using namespace kiln::domain;

namespace {

// Seconds since the epoch of a UTC date and time (days from civil, Hinnant).
std::int64_t utc(int y, int m, int d, int hh = 0, int mm = 0) {
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = y - era * 400;
  auto doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  auto days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return days * 86400 + hh * 3600 + mm * 60;
}

std::int64_t next(const char* schedule, std::int64_t after) {
  auto c = cron_schedule::parse(schedule);
  INFO(schedule << ": " << (c ? "" : c.error().message));
  REQUIRE(c);
  return c->next_after(after);
}

} // namespace

TEST_CASE("cron: the next slot after a moment, in UTC", "[cron]") {
  auto t = utc(2026, 11, 22, 10, 7);  // a Sunday
  CHECK(next("*/15 * * * *", t) == utc(2026, 11, 22, 10, 15));
  CHECK(next("*/15 * * * *", utc(2026, 11, 22, 10, 15)) == utc(2026, 11, 22, 10, 30));  // strictly after
  CHECK(next("@hourly", t) == utc(2026, 11, 22, 11, 0));
  CHECK(next("@daily", t) == utc(2026, 11, 23));
  CHECK(next("0 9 * * mon-fri", t) == utc(2026, 11, 23, 9, 0));
  CHECK(next("0 9 * * 1-5", utc(2026, 11, 27, 9, 0)) == utc(2026, 11, 30, 9, 0));  // Fri -> Mon
  CHECK(next("30 2 1 jan,jul *", t) == utc(2027, 1, 1, 2, 30));
  CHECK(next("0 0 29 2 *", t) == utc(2028, 2, 29));  // the next leap day
  CHECK(next("0 0 * * 7", t) == utc(2026, 11, 29));  // 7 is Sunday too
  // Both day fields restricted: either one matches (Vixie cron).
  CHECK(next("0 0 1 * fri", t) == utc(2026, 11, 27));
  CHECK(next("0 0 30 2 *", t) == -1);  // never
}

TEST_CASE("cron: a bad schedule is refused, naming the field", "[cron]") {
  auto refused = [](const char* s) {
    auto c = cron_schedule::parse(s);
    REQUIRE_FALSE(c);
    return c.error().message;
  };
  CHECK(refused("* * * *").find("5 fields") != std::string::npos);
  CHECK(refused("60 * * * *").find("minute") != std::string::npos);
  CHECK(refused("* 24 * * *").find("hour") != std::string::npos);
  CHECK(refused("* * 0 * *").find("day-of-month") != std::string::npos);
  CHECK(refused("* * * foo *").find("month") != std::string::npos);
  CHECK(refused("*/0 * * * *").find("step") != std::string::npos);
  CHECK(refused("5-1 * * * *").find("out of range") != std::string::npos);
  CHECK(refused("@often").find("unknown cron macro") != std::string::npos);
}

TEST_CASE("cron: a project with a bad schedule fails with line and column", "[cron]") {
  auto r = parse_project_definition("timeout: 5\n"
                                    "triggers:\n"
                                    "  - name: nightly\n"
                                    "    type: cron\n"
                                    "    schedule: \"0 25 * * *\"\n"
                                    "    runs:\n"
                                    "      - name: r\n"
                                    "        host-tag: any\n"
                                    "        script: s\n"
                                    "scripts:\n"
                                    "  s: echo\n");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().message.find("line 5, column 15") != std::string::npos);
  CHECK(r.error().message.find("hour") != std::string::npos);
}

TEST_CASE("cron: a sixth field counts seconds, and the last slot at or before a time is found", "[cron]") {
  auto every5 = cron_schedule::parse("*/5 * * * * *");
  REQUIRE(every5);
  CHECK(every5->next_after(1'000'000'000) == 1'000'000'005);  // 1e9 is a multiple of 5
  CHECK(every5->next_after(1'000'000'003) == 1'000'000'005);
  CHECK(every5->last_at_or_before(1'000'000'004) == 1'000'000'000);
  CHECK(every5->last_at_or_before(1'000'000'005) == 1'000'000'005);

  auto daily = cron_schedule::parse("@daily");
  REQUIRE(daily);
  // Midnight is its own slot; a second before it belongs to the day before.
  CHECK(daily->last_at_or_before(utc(2026, 11, 22, 13, 20)) == utc(2026, 11, 22));
  CHECK(daily->last_at_or_before(utc(2026, 11, 22)) == utc(2026, 11, 22));
  CHECK(daily->last_at_or_before(utc(2026, 11, 22) - 1) == utc(2026, 11, 21));
  auto half_past = cron_schedule::parse("30 * * * *");
  REQUIRE(half_past);
  CHECK(half_past->last_at_or_before(utc(2026, 11, 22, 10, 29) + 59) == utc(2026, 11, 22, 9, 30));
  CHECK(cron_schedule::parse("60 * * * * *").error().message.find("second") != std::string::npos);
  CHECK(cron_schedule::parse("0 0 30 2 *")->last_at_or_before(utc(2026, 11, 22)) == -1);
}

TEST_CASE("cron: CRON_TZ schedules follow the zone's wall clock, across both DST changes", "[cron]") {
  auto three = cron_schedule::parse("CRON_TZ=Europe/Berlin 0 3 * * *");
  REQUIRE(three);
  CHECK(three->next_after(utc(2026, 11, 22)) == utc(2026, 11, 22, 2, 0));  // CET, UTC+1
  CHECK(three->next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 1, 0));      // CEST, UTC+2
  CHECK(three->last_at_or_before(utc(2026, 11, 22, 12)) == utc(2026, 11, 22, 2, 0));

  auto half_two = cron_schedule::parse("CRON_TZ=Europe/Berlin 30 2 * * *");
  REQUIRE(half_two);
  // 29 March 2026: 02:00 jumps to 03:00, so 02:30 does not happen that day.
  CHECK(half_two->next_after(utc(2026, 3, 29)) == utc(2026, 3, 30, 0, 30));
  // 25 October 2026: 02:00-03:00 happens twice; 02:30 fires once, the first time.
  auto first = half_two->next_after(utc(2026, 10, 25));
  CHECK(first == utc(2026, 10, 25, 0, 30));
  CHECK(half_two->next_after(first) == utc(2026, 10, 26, 1, 30));
  CHECK(half_two->last_at_or_before(utc(2026, 10, 25, 1, 45)) == first);

  auto bad = cron_schedule::parse("CRON_TZ=Mars/Olympus 0 3 * * *");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("unknown time zone 'Mars/Olympus'") != std::string::npos);
  CHECK_FALSE(cron_schedule::parse("CRON_TZ=../etc/passwd 0 3 * * *"));
}
