#include "events/json.hpp"

#include "events/json_types.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace kiln {

// The sealed value is of no use outside the server: show only its key.
void to_json(nlohmann::json& j, const project_secret_set& e) {
  j = {{"key", e.key}};
}
void to_json(nlohmann::json& j, const worker_enlisted&) { j = nlohmann::json::object(); }
void to_json(nlohmann::json& j, const worker_online&) { j = nlohmann::json::object(); }

namespace {

std::string rfc3339(std::int64_t unix_ns) {
  std::time_t secs = unix_ns / 1'000'000'000;
  auto micros = (unix_ns % 1'000'000'000) / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

nlohmann::json event_json(const event& e) {
  nlohmann::json data;
  std::visit([&](auto& x) { to_json(data, x); }, e);
  return {{"type", type_name(e)}, {"data", std::move(data)}};
}

} // namespace

std::string to_json(const event& e) { return event_json(e).dump(); }

std::string to_json_line(const logged_commit& c) {
  auto events = nlohmann::json::array();
  auto version = c.body.first_version.value;
  for (auto& e : c.body.events) {
    auto j = event_json(e);
    j["version"] = version++;
    events.push_back(std::move(j));
  }
  nlohmann::json j = {
    {"seq", c.seq.value},
    {"stream", c.body.stream.value},
    {"time", rfc3339(c.body.meta.time_unix_ns)},
    {"principal", c.body.meta.principal},
    {"command_id", c.body.meta.command_id},
    {"correlation_id", c.body.meta.correlation_id},
    {"hash", to_hex(c.hash)},
    {"events", std::move(events)},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace kiln
