#include "actors/cron_schedule.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <vector>

namespace kiln::domain {

namespace {

struct field_spec {
  const char* name;
  int low, high;
  const char* const* names;  // names[i] is low + i; nullptr: numbers only
};

constexpr const char* month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

error bad(const field_spec& f, std::string_view part, const std::string& why) {
  return {"invalid_definition", std::string{"cron "} + f.name + " field '" + std::string{part}
                                  + "': " + why};
}

// One value: a number or (where the field has them) a name.
std::optional<int> value_of(const field_spec& f, std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc{} && end == s.data() + s.size())
    return v;
  if (f.names && s.size() == 3) {
    std::string lower;
    for (char c : s)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (int i = 0; i <= f.high - f.low; ++i)
      if (lower == f.names[i])
        return f.low + i;
  }
  return std::nullopt;
}

// "*", "a", "a-b", each optionally "/step", joined by ",". Sets bits
// low..high; `any` tells whether the field was a bare "*".
template <std::size_t N>
status_result parse_field(const field_spec& f, std::string_view text, std::bitset<N>& bits,
                          bool& any, int extra_high = -1) {
  any = text == "*";
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = std::min(text.find(',', start), text.size());
    auto part = text.substr(start, comma - start);
    start = comma + 1;
    if (part.empty())
      return bad(f, text, "an empty list item");
    int step = 1;
    auto range = part;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      auto s = part.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (ec != std::errc{} || end != s.data() + s.size() || step <= 0)
        return bad(f, part, "the step must be a whole number above 0");
      range = part.substr(0, slash);
    }
    int high_limit = extra_high > 0 ? extra_high : f.high;
    int first = f.low, last = f.high;
    if (range != "*") {
      auto dash = range.find('-');
      auto a = value_of(f, range.substr(0, dash));
      auto b = dash == std::string_view::npos ? a : value_of(f, range.substr(dash + 1));
      if (!a || !b)
        return bad(f, part, "not a number or name");
      first = *a;
      last = dash == std::string_view::npos && part.find('/') != std::string_view::npos ? f.high
                                                                                          : *b;
      if (first < f.low || last > high_limit || first > last)
        return bad(f, part, "out of range " + std::to_string(f.low) + "-"
                              + std::to_string(high_limit));
    }
    for (int v = first; v <= last; v += step)
      bits.set(static_cast<std::size_t>(v == 7 && extra_high == 7 ? 0 : v));
    if (comma == text.size())
      break;
  }
  return kiln::ok;
}

// Days since 1970-01-01 -> {year, month 1-12, day 1-31} (H. Hinnant's algorithm).
std::array<int, 3> civil_from_days(std::int64_t z) {
  z += 719468;
  auto era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = z - era * 146097;
  auto yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  auto y = yoe + era * 400;
  auto doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  auto mp = (5 * doy + 2) / 153;
  auto d = doy - (153 * mp + 2) / 5 + 1;
  auto m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int>(y + (m <= 2)), static_cast<int>(m), static_cast<int>(d)};
}

} // namespace

result<cron_schedule> cron_schedule::parse(std::string_view text) {
  auto zone = time_zone::utc();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  if (text.starts_with("CRON_TZ=")) {
    auto end = std::min(text.find_first_of(" \t"), text.size());
    auto z = time_zone::load(std::string{text.substr(8, end - 8)});
    if (!z)
      return z.error();
    zone = std::move(*z);
    text.remove_prefix(end);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
      text.remove_prefix(1);
  }
  auto c = parse_fields(text);
  if (c)
    c->zone_ = std::move(zone);
  return c;
}

result<cron_schedule> cron_schedule::parse_fields(std::string_view text) {
  static const std::map<std::string_view, std::string_view> macros{
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"}};
  if (text.starts_with('@')) {
    auto it = macros.find(text);
    if (it == macros.end())
      return error{"invalid_definition", "unknown cron macro '" + std::string{text}
                                           + "' (@hourly, @daily, @weekly, @monthly, @yearly)"};
    text = it->second;
  }
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    auto start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    if (i > start)
      fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5 && fields.size() != 6)
    return error{"invalid_definition", "a cron schedule has 5 fields (minute hour day month "
                                       "weekday) or 6 (seconds first), not "
                                         + std::to_string(fields.size())};
  cron_schedule c;
  bool any = false;
  if (fields.size() == 6) {
    if (auto r = parse_field({"second", 0, 59, nullptr}, fields[0], c.seconds_, any); !r)
      return r.error();
    fields.erase(fields.begin());
  } else {
    c.seconds_.set(0);
  }
  if (auto r = parse_field({"minute", 0, 59, nullptr}, fields[0], c.minutes_, any); !r)
    return r.error();
  if (auto r = parse_field({"hour", 0, 23, nullptr}, fields[1], c.hours_, any); !r)
    return r.error();
  if (auto r = parse_field({"day-of-month", 1, 31, nullptr}, fields[2], c.days_, c.any_day_); !r)
    return r.error();
  if (auto r = parse_field({"month", 1, 12, month_names}, fields[3], c.months_, any); !r)
    return r.error();
  if (auto r = parse_field({"day-of-week", 0, 6, day_names}, fields[4], c.weekdays_,
                           c.any_weekday_, 7);
      !r)
    return r.error();
  return c;
}

bool cron_schedule::day_matches(std::int64_t d) const {
  auto [y, m, dom] = civil_from_days(d);
  (void)y;
  auto wday = static_cast<int>(((d % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  bool dom_ok = days_.test(static_cast<std::size_t>(dom));
  bool dow_ok = weekdays_.test(static_cast<std::size_t>(wday));
  bool day_ok = any_day_ || any_weekday_ ? dom_ok && dow_ok : dom_ok || dow_ok;
  return months_.test(static_cast<std::size_t>(m)) && day_ok;
}

// The first match at or after `from` (direction +1) or at or before it
// (-1): day by day, then hours, minutes and seconds in that direction.
std::int64_t cron_schedule::scan(std::int64_t from, int direction) const {
  auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - (a % b < 0); };
  auto first_day = floor_div(from, 86400);
  for (std::int64_t d = first_day; d != first_day + direction * 366 * 8; d += direction) {
    if (!day_matches(d))
      continue;
    for (int i = 0; i < 24 * 60 * 60; ++i) {
      int k = direction > 0 ? i : 24 * 60 * 60 - 1 - i;
      int h = k / 3600, mi = k / 60 % 60, sec = k % 60;
      // Whole hours and minutes that cannot match are passed over at once.
      if (!hours_.test(static_cast<std::size_t>(h))) {
        i += (direction > 0 ? 3599 - k % 3600 : k % 3600);
        continue;
      }
      if (!minutes_.test(static_cast<std::size_t>(mi))) {
        i += (direction > 0 ? 59 - sec : sec);
        continue;
      }
      auto t = d * 86400 + k;
      if (seconds_.test(static_cast<std::size_t>(sec)) && (direction > 0 ? t >= from : t <= from))
        return t;
    }
  }
  return -1;
}

// In the zone's wall clock: the first wall time that matches, turned back
// into an instant. A wall time in a DST gap has no instant (it is
// skipped); one in an overlap has two, and only the earlier counts, so
// that a repeated hour fires once.
std::int64_t cron_schedule::find(std::int64_t from, int direction) const {
  auto wall = from + zone_.offset_at(from);
  for (int guard = 0; guard < 100'000; ++guard) {
    auto w = scan(wall, direction);
    if (w < 0)
      return -1;
    std::int64_t earliest = -1;
    // The offsets in force around that wall time: one, or two at a change.
    for (auto o : {zone_.offset_at(w - 50'400), zone_.offset_at(w + 50'400)}) {
      auto u = w - o;
      if (zone_.offset_at(u) == o && (earliest < 0 || u < earliest))
        earliest = u;
    }
    if (earliest >= 0 && (direction > 0 ? earliest >= from : earliest <= from))
      return earliest;
    wall = w + direction;
  }
  return -1;
}

std::int64_t cron_schedule::next_after(std::int64_t unix_seconds) const {
  return find(unix_seconds + 1, +1);
}

std::int64_t cron_schedule::last_at_or_before(std::int64_t unix_seconds) const {
  return find(unix_seconds, -1);
}

} // namespace kiln::domain
