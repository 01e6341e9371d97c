// Triggers that start builds by themselves (issue 7), against a real
// `kiln up`: cron schedules across a restart, git polling of real
// repositories (file:// and `git daemon` on loopback).
#include "kiln_up_fixture.hpp"

#include <nlohmann/json.hpp>

#include <ctime>
#include <set>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json builds_of(kiln_up& up, const std::string& project) {
  auto r = up.api("GET", "/v1/projects/" + project + "/builds?limit=500");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

void put_project(kiln_up& up, const std::string& name, const std::string& yaml) {
  auto r = up.api("PUT", "/v1/projects/" + name, yaml, {{"Content-Type", "application/yaml"}});
  INFO(r.body);
  REQUIRE((r.status == 201 || r.status == 200));
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

// "cron: the slot of 2026-11-22T13:40:05Z" -> its unix time.
std::int64_t slot_of(const json& build) {
  auto reason = build.value("reason", "");
  auto at = reason.find("slot of ");
  REQUIRE(at != std::string::npos);
  std::tm tm{};
  REQUIRE(strptime(reason.c_str() + at + 8, "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return timegm(&tm);
}

std::vector<std::int64_t> cron_slots(kiln_up& up) {
  std::vector<std::int64_t> out;
  for (auto& b : builds_of(up, "tick")) {
    CHECK(b["trigger"] == "every5s");
    out.push_back(slot_of(b));
  }
  std::sort(out.begin(), out.end());
  return out;
}

const char* cron_project = R"(timeout: 5
triggers:
  - name: every5s
    type: cron
    schedule: "*/5 * * * * *"
    runs:
      - name: r
        host-tag: nowhere
        script: s
scripts:
  s: "true"
)";

} // namespace

TEST_CASE("a cron trigger fires on its slots, and a restart neither repeats one nor makes up each missed one", "[triggers]") {
  kiln_up up;
  put_project(up, "tick", cron_project);
  // A new trigger starts counting from its first slot: two builds, 5 s apart.
  REQUIRE(wait_until([&] { return builds_of(up, "tick").size() >= 2; }, 30s));
  auto before = cron_slots(up);
  CHECK(before[1] - before[0] == 5);
  for (auto s : before)
    CHECK(s % 5 == 0);

  // Down for 12 s: two or three slots pass with no core.
  auto stopped = unix_now();
  up.restart([&] { return unix_now() >= stopped + 12; });
  auto ready = unix_now();
  REQUIRE(wait_until([&] { return cron_slots(up).back() > ready; }, 30s));

  auto all = cron_slots(up);
  INFO("slots: " << json(all).dump() << " stopped " << stopped << " ready " << ready);
  CHECK(std::set<std::int64_t>(all.begin(), all.end()).size() == all.size());  // none twice
  auto last_before = std::max_element(before.begin(), before.end());
  std::size_t missed = 0;
  for (auto s : all)
    missed += s > *last_before && s <= ready;
  CHECK(missed == 1);  // the missed slots make one build, at start
}
