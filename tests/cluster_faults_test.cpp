// The cluster under faults (issue 6), on deploy/local-cluster exactly as an
// evaluator starts it: 3 nats-servers, 2 cores, 3 gateways behind HAProxy
// and 2 workers. While 100 runs print numbered lines for 20 s, a fault is
// made; every run must still PASS with the console its script printed, and
// both cores' logs must end in the same intact hash chain.
#include "support/audit_line.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int runs_per_build = 10;
constexpr int lines_per_run = 100;  // one every 0.2 s: 20 s

std::string load_project() {
  std::string y = "timeout: 10\ntriggers:\n  - name: ci\n    type: simple\n    runs:\n";
  for (int r = 1; r <= runs_per_build; ++r)
    y += "      - name: count-" + std::to_string(r) + "\n        host-tag: local\n        script: count\n";
  y += "scripts:\n  count: |\n    #!/bin/sh\n    i=1\n    while [ $i -le " +
       std::to_string(lines_per_run) +
       " ]; do echo \"line $i of $H_RUN\"; i=$((i+1)); sleep 0.2; done\n";
  return y;
}

// What the script printed: the console without kiln's own "==" lines.
std::string script_output(const std::string& console) {
  std::istringstream in{console};
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("==", 0) != 0)
      out += line + "\n";
  return out;
}

std::string expected_output(const std::string& run) {
  std::string out;
  for (int i = 1; i <= lines_per_run; ++i)
    out += "line " + std::to_string(i) + " of " + run + "\n";
  return out;
}

// One deploy/local-cluster, stopped (and its state removed) when it goes.
class local_cluster {
 public:
  local_cluster() : dir_{"kiln-local-cluster"} {
    start();
    std::ifstream{dir_ / "admin.token"} >> admin_;
    REQUIRE(!admin_.empty());
  }
  ~local_cluster() {
    run_script({"stop"});
    // KILN_TEST_KEEP_LOGS=DIR keeps each cluster's logs there, to look into a failure.
    if (auto keep = std::getenv("KILN_TEST_KEEP_LOGS"))
      run({"/bin/cp", "-r", (dir_ / "logs").string(),
           std::string{keep} + "/" + dir_.path().filename().string()});
  }

  // Runs `cluster.sh COMMAND DIR [N]`; its output. On failure the cluster
  // is stopped and the ends of its logs are shown.
  std::string script(const std::vector<std::string>& args) {
    auto [status, out] = run_script(args);
    if (status != 0) {
      auto logs = run({"/bin/sh", "-c", "tail -n 15 " + (dir_ / "logs").string() + "/*.log"}).second;
      run_script({"stop"});
      FAIL("cluster.sh " << args.at(0) << " exited " << status << ": " << out << "\n" << logs);
    }
    return out;
  }

  std::pair<int, std::string> run_script(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/env",
                                  std::string{"KILN="} + KILN_BINARY,
                                  "KILN_EXECUTOR=host",
                                  "KILN_WORKER_CONCURRENCY=" + std::to_string(runs_per_build * 5),
                                  "bash",
                                  KILN_CLUSTER_SCRIPT,
                                  args.at(0),
                                  dir_.path().string()};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return run(argv, 300s);
  }

  void start() {
    auto out = script({"start"});
    auto at = out.rfind("KILN_URL=http://127.0.0.1:");
    REQUIRE(at != std::string::npos);
    port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at + 26)));
  }

  // A request through the load balancer, sent again (same Idempotency-Key
  // for a POST) while no answer or a 5xx comes back, as a client does.
  http_reply api(const std::string& method, const std::string& target, const std::string& body = {},
                 const std::string& type = "application/json", const std::string& key = {}) {
    std::map<std::string, std::string> h{{"Authorization", "Bearer " + admin_}};
    if (!body.empty())
      h["Content-Type"] = type;
    if (!key.empty())
      h["Idempotency-Key"] = key;
    http_reply r;
    wait_until([&] {
      r = http_request("127.0.0.1", port_, method, target, body, h, 30s);
      return r.status != 0 && r.status < 500;
    }, 120s);
    return r;
  }

  // `kiln audit verify` of core N's copy.
  std::string audit(int core) {
    return audit_line(KILN_BINARY, dir_ / ("core-" + std::to_string(core)));
  }

 private:
  temp_dir dir_;
  std::string admin_;
  std::uint16_t port_ = 0;
};

// The load: `builds` builds of runs_per_build runs each, triggered with keys.
struct load {
  local_cluster& c;
  int triggered = 0;

  void trigger(int builds) {
    for (int i = 0; i < builds; ++i) {
      auto key = "load-" + std::to_string(++triggered);
      auto r = c.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", "application/json", key);
      INFO(r.body);
      REQUIRE(r.status == 201);
    }
  }

  // Polls until some run of the newest build is RUNNING (the fault then
  // lands while runs print).
  void wait_running() {
    REQUIRE(wait_until([&] {
      auto r = c.api("GET", "/v1/projects/app/builds/" + std::to_string(triggered));
      return r.status == 200 && r.body.find("\"RUNNING\"") != std::string::npos;
    }, 180s));
  }

  // Each run that did not PASS: its record and the end of its console.
  std::string why_not_passed() {
    std::string out;
    for (int b = 1; b <= triggered; ++b) {
      auto build = "/v1/projects/app/builds/" + std::to_string(b);
      for (int r = 1; r <= runs_per_build; ++r) {
        auto run = build + "/runs/count-" + std::to_string(r);
        auto record = c.api("GET", run).body;
        if (json::parse(record, nullptr, false).value("status", "") == "PASSED")
          continue;
        auto console = c.api("GET", run + "/console").body;
        out += run + ": " + record + "\n  console ends: "
               + console.substr(console.size() > 400 ? console.size() - 400 : 0) + "\n";
      }
    }
    return out;
  }

  // Waits for every build to end, then checks each PASSED and each run's
  // console is exactly what its script printed.
  void check_all_passed() {
    std::map<std::string, int> statuses;
    bool ended = wait_until([&] {
      auto r = c.api("GET", "/v1/projects/app/builds");
      if (r.status != 200)
        return false;
      statuses.clear();
      for (auto& b : json::parse(r.body))
        ++statuses[b.value("status", "")];
      int done = statuses["PASSED"] + statuses["FAILED"] + statuses["CANCELLED"];
      return done == triggered;
    }, 600s);
    INFO("builds by status: " << json(statuses).dump());
    REQUIRE(ended);
    if (statuses["PASSED"] != triggered)
      FAIL(why_not_passed());
    for (int b = 1; b <= triggered; ++b)
      for (int r = 1; r <= runs_per_build; ++r) {
        auto run = "count-" + std::to_string(r);
        auto console = c.api("GET", "/v1/projects/app/builds/" + std::to_string(b) + "/runs/" + run + "/console");
        INFO("build " << b << " run " << run << ": console of " << console.body.size()
                      << " bytes: " << console.body.substr(0, 600));
        REQUIRE(console.status == 200);
        CHECK(script_output(console.body) == expected_output(run));
      }
  }
};

// Both cores' copies: intact, and the same chain to the same head.
void check_logs_agree(local_cluster& c) {
  std::string one, two;
  bool same = wait_until([&] {
    one = c.audit(1);
    two = c.audit(2);
    return one == two;
  }, 120s);
  INFO(one << "\n" << two);
  CHECK(same);
  CHECK_THAT(one, Catch::StartsWith("audit: intact commits="));
}

void put_project(local_cluster& c) {
  auto r = c.api("PUT", "/v1/projects/app", load_project(), "application/yaml");
  INFO(r.body);
  REQUIRE(r.status / 100 == 2);
}

// 100 runs start; `fault` is made while they print; every run PASSES with
// its script's output. Then `repair` (if any), one more build, and both
// cores' chains agree. "leader" in either stands for the leading core's N.
void under_load(std::vector<std::string> fault, std::vector<std::string> repair = {},
                std::function<void(local_cluster&)> then = {}) {
  local_cluster c;
  put_project(c);
  load l{c};
  l.trigger(10);
  l.wait_running();
  std::string leader;
  REQUIRE(wait_until([&] {
    auto [status, out] = c.run_script({"leader"});
    leader = out.substr(0, out.find('\n'));
    return status == 0;
  }, 60s));
  for (auto* args : {&fault, &repair})
    std::replace(args->begin(), args->end(), std::string{"leader"}, leader);
  c.script(fault);
  l.check_all_passed();
  if (!repair.empty()) {
    c.script(repair);
    l.trigger(1);
    l.check_all_passed();
  }
  check_logs_agree(c);
  if (then)
    then(c);
}

// `cluster.sh balance`: the log, the consoles and the events each led by
// another nats-server (each stream's leader, from its output).
void check_balanced(local_cluster& c) {
  auto out = c.script({"balance"});
  INFO(out);
  CHECK_THAT(out, Catch::Contains("spread=true"));
  std::map<std::string, std::string> leaders;
  std::regex line{R"(stream=(\S+) leader=(\S*) )"};
  for (std::sregex_iterator it{out.begin(), out.end(), line}, end; it != end; ++it)
    leaders[(*it)[1]] = (*it)[2];
  REQUIRE(leaders.size() == 3);
  std::set<std::string> distinct;
  for (auto& [stream, leader] : leaders) {
    CHECK_FALSE(leader.empty());
    distinct.insert(leader);
  }
  CHECK(distinct.size() == 3);
}

} // namespace

TEST_CASE("local cluster: every gateway rolled while 100 runs print, nothing lost or doubled",
          "[cluster][faults]") {
  under_load({"roll-gateways"});
}

// The leading core: the other must take over the process managers and the
// scheduler, or the builds would never end.
TEST_CASE("local cluster: a core SIGKILLed under load loses nothing and its copy catches up",
          "[cluster][faults]") {
  under_load({"kill-core", "leader"}, {"restart-core", "leader"});
}

TEST_CASE("local cluster: a nats-server SIGKILLed under load, the cluster carries on, it comes back",
          "[cluster][faults]") {
  // A restart moves leaders about; balancing spreads them again.
  under_load({"kill-nats", "2"}, {"restart-nats", "2"}, check_balanced);
}

TEST_CASE("local cluster: stopped whole and started again, every projection is as it was",
          "[cluster][faults]") {
  local_cluster c;
  put_project(c);
  load l{c};
  l.trigger(3);
  l.check_all_passed();
  // What a client can read: projects, builds, each build with its runs, consoles.
  auto snapshot = [&] {
    std::map<std::string, std::string> views;
    for (std::string target : {"/v1/projects", "/v1/projects/app", "/v1/projects/app/builds"})
      views[target] = c.api("GET", target).body;
    for (int b = 1; b <= l.triggered; ++b) {
      auto build = "/v1/projects/app/builds/" + std::to_string(b);
      views[build] = c.api("GET", build).body;
      for (int r = 1; r <= runs_per_build; ++r) {
        auto run = build + "/runs/count-" + std::to_string(r);
        views[run] = c.api("GET", run).body;
        views[run + "/console"] = c.api("GET", run + "/console").body;
      }
    }
    return views;
  };
  check_logs_agree(c);
  auto before = snapshot();
  auto head = c.audit(1);
  c.script({"stop"});
  c.script({"start"});
  auto after = snapshot();
  for (auto& [target, body] : before) {
    INFO(target);
    CHECK(after[target] == body);
  }
  CHECK(c.audit(1) == head);
  CHECK(c.audit(2) == head);
  // And it still runs builds.
  l.trigger(1);
  l.check_all_passed();
  check_logs_agree(c);
}
