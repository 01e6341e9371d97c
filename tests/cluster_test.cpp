// Two `kiln core`s on the cluster's log (issue 6), a gateway and a worker,
// all real processes on a real nats-server: builds run whichever core takes
// a command, consoles read the same from either, a core killed with SIGKILL
// loses nothing acknowledged, and once it is back its copy catches up with
// a hash chain identical to the other core's.
#include "support/audit_line.hpp"
#include "support/durable_reader.hpp"
#include "support/http_client.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <iterator>
#include <algorithm>
#include <set>
#include <sstream>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string numbered_project = R"(timeout: 30
triggers:
  - name: ci
    type: simple
    runs:
      - name: count
        host-tag: linux
        script: count
scripts:
  count: |
    #!/bin/sh
    i=1
    while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); done
)";

std::string expected_lines() {
  std::string out;
  for (int i = 1; i <= 40; ++i)
    out += "line " + std::to_string(i) + "\n";
  return out;
}

std::unique_ptr<child_process> start_core(const std::string& nats, const std::filesystem::path& data) {
  auto p = std::make_unique<child_process>(
    process_options{{KILN_BINARY, "core", "--nats", nats, "--data", data.string()}});
  if (!p->wait_for_line("kiln core: ready", 60s))
    FAIL("kiln core did not start: " << p->transcript());
  return p;
}

} // namespace

TEST_CASE("two kiln cores on the cluster's log: either serves, one is killed, its copy catches up",
          "[cluster][nats][e2e]") {
  nats_server nats;
  temp_dir dir{"kiln-cluster"};
  auto a = start_core(nats.url(), dir / "a");
  std::string admin;
  std::ifstream{dir / "a" / "admin.token"} >> admin;
  REQUIRE(!admin.empty());
  // A second core without the cluster's keys refuses to start: it could not
  // open project secrets, and a new admin token would revoke the first's.
  {
    child_process lone{{{KILN_BINARY, "core", "--nats", nats.url(), "--data", (dir / "lone").string()}, true}};
    auto code = lone.wait(60s);
    REQUIRE(code);
    CHECK(*code == 1);
    while (lone.read_line(1s)) {
    }
    CHECK_THAT(lone.transcript(), Catch::Contains("copy secret.key and admin.token from another core"));
  }
  std::filesystem::create_directories(dir / "b");
  std::filesystem::copy_file(dir / "a" / "secret.key", dir / "b" / "secret.key");
  {
    child_process keyless{{{KILN_BINARY, "core", "--nats", nats.url(), "--data", (dir / "b").string()}, true}};
    REQUIRE(keyless.wait(60s) == 1);
    while (keyless.read_line(1s)) {
    }
    CHECK_THAT(keyless.transcript(), Catch::Contains("copy admin.token from another core"));
  }
  std::filesystem::copy_file(dir / "a" / "admin.token", dir / "b" / "admin.token");
  auto b = start_core(nats.url(), dir / "b");

  child_process gw{{{KILN_BINARY, "gateway", "--nats", nats.url(), "--listen", "127.0.0.1:0",
                     "--data", (dir / "gw").string()}}};
  auto line = gw.wait_for_line("listening on http://", 30s);
  REQUIRE(line);
  std::smatch m;
  REQUIRE(std::regex_search(*line, m, std::regex{R"(127\.0\.0\.1:(\d+))"}));
  auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
  auto api = [&](const std::string& method, const std::string& target, const std::string& body = {},
                 const std::string& type = "application/json", const std::string& key = {}) {
    std::map<std::string, std::string> h{{"Authorization", "Bearer " + admin}};
    if (!body.empty())
      h["Content-Type"] = type;
    if (!key.empty())
      h["Idempotency-Key"] = key;
    return http_request("127.0.0.1", port, method, target, body, h);
  };
  REQUIRE(api("PUT", "/v1/projects/app", numbered_project, "application/yaml").status / 100 == 2);

  auto url = "http://127.0.0.1:" + std::to_string(port);
  child_process worker{{{KILN_BINARY, "worker", "--server", url, "--name", "w1", "--tags", "linux",
                         "--concurrency", "2", "--workdir", (dir / "w1").string(), "--executor",
                         "host", "--poll-wait", "2"}}};
  REQUIRE(wait_until([&] { return api("POST", "/v1/workers/w1/enlist").status == 200; }, 60s));

  // As a client does: a request that got no answer (its core was killed
  // while it was on the way) is sent again with the same key, which makes
  // the retry safe whichever core takes it.
  int triggered = 0;
  auto trigger = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto key = "trigger-" + std::to_string(++triggered);
      REQUIRE(wait_until([&] {
        auto r = api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", "application/json", key);
        return r.status == 201;
      }, 90s));
    }
  };
  auto all_passed = [&](int builds) {
    return wait_until([&] {
      auto r = api("GET", "/v1/projects/app/builds");
      if (r.status != 200)
        return false;
      auto list = json::parse(r.body);
      int passed = 0;
      for (auto& bld : list)
        passed += bld.value("status", "") == "PASSED";
      return passed == builds;
    }, 180s);
  };
  trigger(6);
  REQUIRE(all_passed(6));

  // Both cores publish every event they copy; KILN_EVENTS keeps each once:
  // a commit's message on a subject as often as the commit has events of
  // that type, not twice as often.
  {
    durable_reader reader{nats.url(), "once"};
    std::map<std::pair<std::uint64_t, std::string>, int> seen, expected;
    for (auto batch = reader.fetch(500); !batch.empty(); batch = reader.fetch(500))
      for (auto& [subject, commit] : batch) {
        auto key = std::pair{commit["seq"].get<std::uint64_t>(), subject};
        ++seen[key];
        int events = 0;
        for (auto& e : commit["events"])
          events += subject.ends_with("." + e["type"].get<std::string>());
        expected[key] = events;
      }
    REQUIRE(seen.size() > 20);
    for (auto& [key, n] : seen) {
      INFO("commit " << key.first << " on " << key.second);
      CHECK(n == expected[key]);
    }
  }

  // SIGKILL core a while builds run: b carries on, nothing acknowledged is lost.
  trigger(4);
  a->signal(SIGKILL);
  REQUIRE(a->wait(30s));
  trigger(4);
  REQUIRE(all_passed(14));
  for (int n = 1; n <= 14; ++n) {
    INFO("build " << n);
    auto console = api("GET", "/v1/projects/app/builds/" + std::to_string(n) + "/runs/count/console");
    REQUIRE(console.status == 200);
    CHECK_THAT(console.body, Catch::Contains(expected_lines()));
  }

  // Back, a's copy takes what it missed: both chains end at the same hash.
  a = start_core(nats.url(), dir / "a");
  trigger(2);
  REQUIRE(all_passed(16));
  std::string head_a, head_b;
  CHECK(wait_until([&] {
    head_a = audit_line(KILN_BINARY, dir / "a");
    head_b = audit_line(KILN_BINARY, dir / "b");
    return head_a == head_b;
  }, 60s));
  INFO(head_a << "\n" << head_b);
  CHECK_THAT(head_a, Catch::StartsWith("audit: intact commits="));
  // Every event of every run and build commit is in KILN_EVENTS: across
  // the kill of core a, which led (it started alone) and published them, b
  // took over publishing and published again what a may have left.
  {
    auto [status, lines] = run({KILN_BINARY, "events", "--data", (dir / "b").string()}, 60s);
    REQUIRE(status == 0);
    std::set<std::pair<std::uint64_t, std::string>> expected, published;
    std::istringstream in{lines};
    for (std::string line; std::getline(in, line);) {
      auto commit = json::parse(line, nullptr, false);
      if (!commit.is_object())
        continue;
      auto stream = commit.value("stream", "");
      if (stream.rfind("run/", 0) == 0 || stream.rfind("build/", 0) == 0)
        for (auto& e : commit["events"])
          expected.insert({commit["seq"].get<std::uint64_t>(), e["type"].get<std::string>()});
    }
    REQUIRE(expected.size() > 50);
    durable_reader reader{nats.url(), "complete"};
    auto missing = [&] {
      std::vector<std::pair<std::uint64_t, std::string>> out;
      std::set_difference(expected.begin(), expected.end(), published.begin(), published.end(),
                          std::back_inserter(out));
      return out;
    };
    wait_until([&] {
      for (auto& [subject, commit] : reader.fetch(500))
        published.insert({commit["seq"].get<std::uint64_t>(), subject.substr(subject.rfind('.') + 1)});
      return missing().empty();
    }, 60s);
    for (auto& [seq, type] : missing())
      FAIL_CHECK("commit " << seq << ": no " << type << " in KILN_EVENTS");
  }
  // Consoles read the same through either core (the gateway asks whichever answers).
  for (int n = 1; n <= 16; ++n)
    CHECK_THAT(api("GET", "/v1/projects/app/builds/" + std::to_string(n) + "/runs/count/console").body,
               Catch::Contains(expected_lines()));
}
