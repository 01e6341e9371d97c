// End to end with real processes: `kiln up` and `kiln worker` children,
// real HTTP over loopback, real scripts under the worker's executor.
#include "kiln_up_fixture.hpp"

#include <nlohmann/json.hpp>

#include <set>

using namespace kiln::test;
using json = nlohmann::json;

namespace {

const char* e2e_project = R"yaml(timeout: 5
triggers:
  - name: ci
    type: simple
    runs:
      - name: pass
        host-tag: "*"
        script: pass
      - name: fail
        host-tag: "*"
        script: fail
      - name: build-{loop}
        host-tag: "*"
        script: build
        loop-on:
          - param: FLAVOUR
            values: [debug, release]
        triggers:
          - name: smoke
            run-names: "{name}-{loop}"
      - name: grep
        host-tag: "*"
        script: grep
        test-grepping:
          result-pattern: '^(?P<name>\w+): (?P<result>ok|bad)$'
          fixupdict: {ok: PASSED, bad: FAILED}
  - name: smoke
    type: simple
    runs:
      - name: smoke
        host-tag: "*"
        script: smoke
        network: true
  - name: long
    type: simple
    runs:
      - name: long
        host-tag: "*"
        script: long
      - name: slow
        host-tag: "*"
        script: slow
        timeout: 2s
  - name: lines
    type: simple
    runs:
      - name: lines
        host-tag: "*"
        script: lines
  - name: nap
    type: simple
    runs:
      - name: nap
        host-tag: "*"
        script: nap
scripts:
  pass: |
    #!/bin/sh -e
    echo "the key is $(cat $SECRETS/deploy-key)"
    seq 1 200000 > $ARCHIVE/numbers.txt
    mkdir -p $ARCHIVE/sub && printf 'x' > $ARCHIVE/sub/one.txt
  fail: |
    #!/bin/sh
    echo "about to fail"
    exit 3
  build: |
    #!/bin/sh -e
    echo "building $FLAVOUR"
    echo "$FLAVOUR binary" > $ARCHIVE/app.bin
  smoke: |
    #!/bin/sh -e
    echo "smoke for $H_RUN after $H_TRIGGER_URL"
    auth="Authorization: Bearer $(cat $SECRETS/kiln-read)"
    echo "parent left: $(curl -fsS -H "$auth" "$H_TRIGGER_URL/artifacts/app.bin")"
  grep: |
    #!/bin/sh
    echo "alpha: ok"
    echo "beta: bad"
  long: |
    #!/bin/sh
    echo started
    sleep 876501
  slow: |
    #!/bin/sh
    (sleep 876502 &)
    setsid sleep 876502 &
    echo slow started
    sleep 876502
  lines: |
    #!/bin/sh
    for i in $(seq 1 80); do echo "line $i"; sleep 0.1; done
  nap: |
    #!/bin/sh
    echo "started on $H_WORKER"
    sleep 4
    echo "woke on $H_WORKER"
)yaml";

// `kiln worker` as a child process, registered by itself and enlisted by
// the admin.
struct worker_child {
  std::unique_ptr<child_process> proc;
  std::string name;

  worker_child(kiln_up& up, const std::string& name_, const std::filesystem::path& workdir,
               std::vector<std::string> extra = {})
    : name(name_) {
    std::vector<std::string> argv{KILN_BINARY, "worker", "--server", up.url(), "--name", name,
                                  "--workdir", workdir.string(), "--poll-wait", "5"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // Its log goes to the test's stderr: ctest shows it when a test fails,
    // and an unread pipe cannot fill up and stall the worker.
    proc = std::make_unique<child_process>(process_options{argv, false});
    REQUIRE(wait_until([&] {
      return up.api("POST", "/v1/workers/" + name + "/enlist").status == 200;
    }));
  }
};

json get_json(kiln_up& up, const std::string& target) {
  auto r = up.api("GET", target);
  auto j = json::parse(r.body, nullptr, false);
  return j.is_discarded() ? json{} : j;
}

std::string run_path(int build, const std::string& run) {
  return "/v1/projects/e2e/builds/" + std::to_string(build) + "/runs/" + run;
}

bool finished(const std::string& status) {
  return status == "PASSED" || status == "FAILED" || status == "CANCELLED"
         || status == "TIMEOUT";
}

json wait_for_build(kiln_up& up, int build, std::chrono::milliseconds timeout = 60s) {
  json b;
  bool done = wait_until([&] {
    b = get_json(up, "/v1/projects/e2e/builds/" + std::to_string(build));
    return finished(b.value("status", std::string{}));
  }, timeout);
  INFO(b.dump(2));
  REQUIRE(done);
  return b;
}

json run_of(const json& build, const std::string& name) {
  for (auto& r : build["runs"])
    if (r["name"] == name)
      return r;
  return {};
}

int trigger(kiln_up& up, const std::string& name) {
  auto r = up.api("POST", "/v1/projects/e2e/builds", json{{"trigger", name}}.dump());
  REQUIRE(r.status == 201);
  return json::parse(r.body)["build"].get<int>();
}

void load_project(kiln_up& up) {
  auto put = up.api("PUT", "/v1/projects/e2e", e2e_project, {{"Content-Type", "application/yaml"}});
  INFO(put.body);
  REQUIRE(put.status == 200);
  REQUIRE(up.api("PUT", "/v1/projects/e2e/secrets/deploy-key", "k3y-very-secret",
                 {{"Content-Type", "text/plain"}})
            .status
          < 300);
  // A read token for chained runs to fetch their parent's artifacts (docs/api.md).
  auto token = up.api("POST", "/v1/tokens", R"({"scope":"read","project":"e2e","label":"chains"})");
  REQUIRE(token.status == 201);
  REQUIRE(up.api("PUT", "/v1/projects/e2e/secrets/kiln-read",
                 json::parse(token.body)["token"].get<std::string>(), {{"Content-Type", "text/plain"}})
            .status
          < 300);
}

std::string console_of(kiln_up& up, int build, const std::string& run) {
  return up.api("GET", run_path(build, run) + "/console").body;
}


} // namespace

TEST_CASE("a build's runs end with the right statuses, consoles, artifacts and tests",
          "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child w{up, "w1", up.dir / "w1", {"--concurrency", "2"}};
  auto n = trigger(up, "ci");
  auto b = wait_for_build(up, n);
  CHECK(b["status"] == "FAILED");
  std::map<std::string, std::string> statuses;
  std::string consoles;  // shown when a status is not the expected one
  for (auto& r : b["runs"]) {
    statuses[r["name"]] = r["status"];
    consoles += "--- " + r["name"].get<std::string>() + "\n" + console_of(up, n, r["name"]);
  }
  INFO(consoles);
  CHECK(statuses == std::map<std::string, std::string>{
                      {"pass", "PASSED"},         {"fail", "FAILED"},
                      {"build-debug", "PASSED"},  {"build-release", "PASSED"},
                      {"smoke-debug", "PASSED"},  {"smoke-release", "PASSED"},
                      {"grep", "FAILED"}});
  CHECK(run_of(b, "fail")["exit_code"] == 3);
  CHECK(console_of(up, n, "fail").find("about to fail") != std::string::npos);

  // The secret reached the script as a file and the console as stars.
  auto pass = console_of(up, n, "pass");
  CHECK(pass.find("the key is ***") != std::string::npos);
  CHECK(pass.find("k3y-very-secret") == std::string::npos);
  CHECK(pass.find("kiln simulate rundef.json") != std::string::npos);

  // Artifacts download byte for byte, with their sha256.
  std::string numbers;
  for (int i = 1; i <= 200000; ++i)
    numbers += std::to_string(i) + "\n";
  auto art = up.api("GET", run_path(n, "pass") + "/artifacts/numbers.txt");
  CHECK(art.status == 200);
  CHECK(art.body == numbers);
  CHECK(art.headers["content-type"] == "text/plain; charset=utf-8");
  auto part = up.api("GET", run_path(n, "pass") + "/artifacts/numbers.txt", {},
                     {{"Range", "bytes=0-9"}});
  CHECK(part.status == 206);
  CHECK(part.body == "1\n2\n3\n4\n5\n");
  auto list = get_json(up, run_path(n, "pass") + "/artifacts");
  REQUIRE(list.size() == 2);
  CHECK(list[0]["path"] == "numbers.txt");
  CHECK(list[0]["size"] == numbers.size());
  CHECK(list[0]["sha256"] == art.headers["x-checksum-sha256"]);
  CHECK(list[1]["path"] == "sub/one.txt");
  CHECK(up.api("GET", run_path(n, "pass") + "/artifacts/sub/one.txt").body == "x");

  // The chained run knows who chained it, and fetches what it archived.
  auto smoke = console_of(up, n, "smoke-debug");
  INFO(smoke);
  CHECK(smoke.find("smoke for smoke-debug after " + up.url() + run_path(n, "build-debug"))
        != std::string::npos);
  CHECK(smoke.find("parent left: debug binary") != std::string::npos);
  CHECK(console_of(up, n, "smoke-release").find("parent left: release binary") != std::string::npos);

  // test-grepping results, and the failed one failed the run.
  auto tests = get_json(up, run_path(n, "grep") + "/tests");
  INFO(tests.dump());
  REQUIRE(tests.size() == 2);
  CHECK(tests[0]["name"] == "alpha");
  CHECK(tests[0]["status"] == "PASSED");
  CHECK(tests[1]["status"] == "FAILED");

  // The rundef is served with no secret in it.
  auto rundef = up.api("GET", run_path(n, "pass") + "/rundef");
  CHECK(rundef.status == 200);
  CHECK(rundef.body.find("k3y-very-secret") == std::string::npos);
}

TEST_CASE("a cancelled run and a timed-out run leave no process behind", "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child w{up, "w1", up.dir / "w1", {"--concurrency", "2"}};
  auto n = trigger(up, "long");
  REQUIRE(wait_until([&] { return console_of(up, n, "long").find("started") != std::string::npos; }));
  CHECK(up.api("POST", run_path(n, "long") + "/cancel").status == 202);
  auto b = wait_for_build(up, n);
  CHECK(run_of(b, "long")["status"] == "CANCELLED");
  CHECK(run_of(b, "slow")["status"] == "TIMEOUT");
  CHECK(console_of(up, n, "slow").find("slow started") != std::string::npos);
  auto none_left = wait_until([] { return processes_with("876501") + processes_with("876502") == 0; }, 5s);
  INFO(run({"/bin/ps", "-eo", "pid,ppid,pgid,sid,etimes,args"}).second);
  CHECK(none_left);
}

TEST_CASE("the server is down for 5 s of output mid-run and the console arrives whole", "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child w{up, "w1", up.dir / "w1"};
  auto n = trigger(up, "lines");
  REQUIRE(wait_until([&] { return console_of(up, n, "lines").find("line 5\n") != std::string::npos; }));
  // Down until the worker has spooled 50 more lines (5 s of output) that no server took.
  auto spool = up.dir / "w1" / "runs" / "slot-0.console";  // the worker's only run slot
  up.restart([&] {
    std::ifstream in{spool, std::ios::binary};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    return text.find("line 55\n") != std::string::npos;
  });
  auto b = wait_for_build(up, n);
  CHECK(run_of(b, "lines")["status"] == "PASSED");
  auto text = console_of(up, n, "lines");
  std::string expected;
  for (int i = 1; i <= 80; ++i)
    expected += "line " + std::to_string(i) + "\n";
  auto from = text.find("line 1\n");
  REQUIRE(from != std::string::npos);
  auto to = text.find("== kiln: PASSED");
  REQUIRE(to != std::string::npos);
  CHECK(text.substr(from, to - from) == expected);  // nothing lost, nothing twice
}

TEST_CASE("a worker killed mid-run: the run is requeued and finished by another", "[e2e]") {
  // Check-ins (the heartbeat) every second; silent for 3 s is lost.
  kiln_up up{{"--worker-timeout", "3"}};
  load_project(up);
  auto a = std::make_unique<worker_child>(up, "wa", up.dir / "wa",
                                          std::vector<std::string>{"--poll-wait", "1"});
  auto n = trigger(up, "nap");
  REQUIRE(wait_until([&] { return console_of(up, n, "nap").find("started on wa") != std::string::npos; }));
  a->proc->signal(SIGKILL);
  a->proc->wait();
  worker_child b{up, "wb", up.dir / "wb", {"--poll-wait", "1"}};
  auto build = wait_for_build(up, n);
  auto run = run_of(build, "nap");
  CHECK(run["status"] == "PASSED");
  CHECK(run["worker"] == "wb");
  CHECK(run["attempt"] == 2);
  auto text = console_of(up, n, "nap");
  CHECK(text.find("started on wa") != std::string::npos);  // the lost attempt's output stays
  CHECK(text.find("woke on wb") != std::string::npos);
  CHECK(text.find("woke on wa") == std::string::npos);
}

TEST_CASE("kiln simulate reproduces a run's output from its rundef", "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child w{up, "w1", up.dir / "w1"};
  auto n = trigger(up, "ci");
  wait_for_build(up, n);
  auto rundef = get_json(up, run_path(n, "pass") + "/rundef");
  rundef["secrets"] = {{"deploy-key", "k3y-very-secret"}};
  std::ofstream{up.dir / "rundef.json"} << rundef.dump();
  auto [status, out] = run({KILN_BINARY, "simulate", (up.dir / "rundef.json").string(), "-w",
                            (up.dir / "sim").string()});
  INFO(out);
  CHECK(status == 0);
  // The script's part of both consoles (after the stanza) is the same.
  auto script_part = [](const std::string& text) {
    auto from = text.find("the key is");
    return from == std::string::npos ? std::string{} : text.substr(from, text.find("== kiln: ", from) - from);
  };
  auto server = script_part(console_of(up, n, "pass"));
  CHECK_FALSE(server.empty());
  CHECK(script_part(out) == server);
  std::ifstream sim{up.dir / "sim" / "archive" / "numbers.txt"};
  CHECK(std::string{std::istreambuf_iterator<char>{sim}, {}}
        == up.api("GET", run_path(n, "pass") + "/artifacts/numbers.txt").body);
}

TEST_CASE("kiln up --workers 1 runs builds with its own enlisted worker", "[e2e]") {
  kiln_up up{{"--workers", "1"}};
  load_project(up);
  auto n = trigger(up, "ci");
  auto b = wait_for_build(up, n);
  CHECK(run_of(b, "pass")["status"] == "PASSED");
  CHECK(run_of(b, "pass")["worker"] == "local-1");
  auto workers = get_json(up, "/v1/workers");
  INFO(workers.dump());
  REQUIRE(workers.size() == 1);
  CHECK(workers[0]["enlisted"] == true);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  CHECK(workers[0]["tags"] == json::array({std::string{host}}));
}

TEST_CASE("kiln worker refuses a bad command line and an unknown executor", "[e2e]") {
  auto [s1, o1] = run({KILN_BINARY, "worker", "--executor", "chroot"});
  CHECK(s1 == 2);
  CHECK(o1.find("--executor") != std::string::npos);
  auto [s2, o2] = run({KILN_BINARY, "simulate"});
  CHECK(s2 == 2);
  temp_dir dir{"bad-simulate"};
  std::ofstream{dir / "bad.json"} << "{not json";
  auto [s4, o4] = run({KILN_BINARY, "simulate", (dir / "bad.json").string()});
  CHECK(s4 == 2);
  CHECK(o4.find("not a JSON object") != std::string::npos);
  std::ofstream{dir / "ok.json"} << R"({"project":"p","build":1,"run":"r","script":"true"})";
  auto [s5, o5] = run({KILN_BINARY, "simulate", (dir / "ok.json").string(), "-w", dir.path().string()});
  CHECK(s5 == 2);  // not empty: its files could be replaced
  CHECK(o5.find("is not empty") != std::string::npos);
  auto [s6, o6] = run({KILN_BINARY, "worker", "--shared-volumes", "nopath"});
  CHECK(s6 == 2);
  CHECK(o6.find("NAME=PATH") != std::string::npos);
  auto [s3, o3] = run({KILN_BINARY, "worker", "--server", "http://127.0.0.1:1", "--concurrency",
                       "0", "--workdir", "/tmp/kiln-never"});
  CHECK(s3 == 1);
  CHECK(o3.find("concurrency") != std::string::npos);
}

TEST_CASE("a worker low on disk takes no new runs, and another gets them", "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child full{up, "full", up.dir / "full",
                    {"--concurrency", "4", "--min-free-disk-mb", "999999999"}};
  worker_child ok{up, "ok", up.dir / "ok"};
  auto n = trigger(up, "ci");
  auto b = wait_for_build(up, n);
  for (auto& r : b["runs"])
    CHECK(r["worker"] == "ok");
}

TEST_CASE("SIGTERM drains a worker: its run finishes and is reported, then it exits", "[e2e]") {
  kiln_up up;
  load_project(up);
  worker_child w{up, "w1", up.dir / "w1"};
  auto n = trigger(up, "nap");
  REQUIRE(wait_until([&] { return console_of(up, n, "nap").find("started on w1") != std::string::npos; }));
  w.proc->signal(SIGTERM);
  auto code = w.proc->wait(30s);
  REQUIRE(code);
  CHECK(*code == 0);
  auto b = get_json(up, "/v1/projects/e2e/builds/" + std::to_string(n));
  CHECK(run_of(b, "nap")["status"] == "PASSED");
  CHECK(console_of(up, n, "nap").find("woke on w1") != std::string::npos);
}

TEST_CASE("a worker restarted mid-run: its first check-in requeues the run it lost", "[e2e]") {
  kiln_up up;  // heartbeat timeout 90 s: only the check-in can requeue within the test
  load_project(up);
  std::vector<std::string> argv{KILN_BINARY, "worker", "--server", up.url(), "--name", "wr",
                                "--workdir", (up.dir / "wr").string(), "--poll-wait", "5"};
  auto first = std::make_unique<worker_child>(up, "wr", up.dir / "wr");
  auto n = trigger(up, "nap");
  REQUIRE(wait_until([&] { return console_of(up, n, "nap").find("started on wr") != std::string::npos; }));
  first->proc->signal(SIGKILL);
  first->proc->wait();
  child_process again{process_options{argv, false}};  // same name and workdir: same token
  auto b = wait_for_build(up, n, 30s);
  auto run = run_of(b, "nap");
  CHECK(run["status"] == "PASSED");
  CHECK(run["attempt"] == 2);
}

TEST_CASE("a check-in with a malformed body gets 400 naming the field", "[e2e]") {
  kiln_up up;
  auto reg = up.api("POST", "/v1/workers", R"({"name":"wx","tags":[],"concurrency":1})", {}, "-");
  REQUIRE(reg.status == 201);
  auto token = json::parse(reg.body)["token"].get<std::string>();
  REQUIRE(up.api("POST", "/v1/workers/wx/enlist").status == 200);
  auto bad = up.api("POST", "/v1/workers/wx/checkin", R"({"active":5})", {}, token);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("'active' is a list of run ids") != std::string::npos);
  auto not_json = up.api("POST", "/v1/workers/wx/checkin", "[1,", {}, token);
  CHECK(not_json.status == 400);
}
