// `kiln up --nats URL`: the gateway reaches the core over a real
// nats-server, and a program outside kiln follows a project's events as
// JSON on kiln.evt.<project>.<build>.<run>.<Type>.
#include "events/nats_bus.hpp"
#include "kiln_up_fixture.hpp"
#include "sample_projects.hpp"
#include "support/durable_reader.hpp"
#include "support/nats_server.hpp"

#include <nlohmann/json.hpp>

#include <nats/nats.h>

#include <mutex>
#include <set>

using namespace kiln;
using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("kiln up --nats serves the API over NATS and publishes every event to outsiders",
          "[nats][e2e]") {
  nats_server server;
  auto outsider = bus::nats_bus::connect({{server.url()}, "outsider"});
  REQUIRE(outsider);
  std::mutex mu;
  std::vector<std::string> subjects;
  std::vector<json> lines;
  auto sub = (*outsider)->subscribe("kiln.evt.app.>", [&](const bus::message& m) {
    std::lock_guard lock{mu};
    subjects.push_back(m.subject);
    lines.push_back(json::parse(m.data));
  });

  kiln_up up{{"--nats", server.url()}};
  REQUIRE(up.api("PUT", "/v1/projects/app", one_run_project, {{"Content-Type", "application/yaml"}}).status / 100 == 2);
  auto made = up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})");
  INFO(made.body);
  REQUIRE(made.status == 201);
  REQUIRE(up.api("GET", "/v1/projects/app/builds/1").status == 200);

  REQUIRE(wait_until([&] {
    std::lock_guard lock{mu};
    for (auto& s : subjects)
      if (s == "kiln.evt.app.1.unit.RunQueued")
        return true;
    return false;
  }, 20s));
  std::lock_guard lock{mu};
  auto has = [&](const std::string& s) {
    return std::find(subjects.begin(), subjects.end(), s) != subjects.end();
  };
  CHECK(has("kiln.evt.app.-.-.ProjectCreated"));
  CHECK(has("kiln.evt.app.-.-.BuildNumberAllocated"));
  CHECK(has("kiln.evt.app.1.-.BuildCreated"));
  for (auto& l : lines) {
    CHECK(l.contains("seq"));
    CHECK(l.contains("stream"));
    CHECK(l["events"].is_array());
  }
  // Nothing of other projects.
  for (auto& s : subjects)
    CHECK(s.rfind("kiln.evt.app.", 0) == 0);
}


TEST_CASE("an outside durable JetStream consumer resumes kiln's events after a restart",
          "[nats][e2e]") {
  nats_server server;
  kiln_up up{{"--nats", server.url()}};
  REQUIRE(up.api("PUT", "/v1/projects/app", one_run_project, {{"Content-Type", "application/yaml"}}).status / 100 == 2);
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);

  std::uint64_t last_seq = 0;
  {
    durable_reader first{server.url(), "auditor"};
    REQUIRE(wait_until([&] {
      for (auto& [subject, line] : first.fetch(50)) {
        last_seq = std::max(last_seq, line["seq"].get<std::uint64_t>());
        if (subject == "kiln.evt.app.1.unit.RunQueued")
          return true;
      }
      return false;
    }, 30s));
  }  // the auditor stops

  // kiln goes on without it, and restarts.
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  up.restart([] { return true; });
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);

  durable_reader again{server.url(), "auditor"};
  std::set<std::string> seen;
  std::uint64_t lowest = UINT64_MAX;
  REQUIRE(wait_until([&] {
    for (auto& [subject, line] : again.fetch(50)) {
      seen.insert(subject);
      lowest = std::min(lowest, line["seq"].get<std::uint64_t>());
    }
    return seen.count("kiln.evt.app.3.unit.RunQueued") > 0;
  }, 30s));
  CHECK(lowest > last_seq);  // nothing it had acknowledged comes again
  CHECK(seen.count("kiln.evt.app.2.-.BuildCreated"));  // what happened while it was away
}
