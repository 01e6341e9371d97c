// The process managers, pure: what a build or the watchdog asks for next.
#include "actors/build_plan.hpp"
#include "actors/process_manager.hpp"
#include "model_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

const char* chain_yaml = R"(timeout: 2
params: {LEVEL: project}
triggers:
  - name: ci
    type: git_poller
    params: {GIT_URL: "https://git.example.com/app.git", LEVEL: trigger}
    runs:
      - name: build-{loop}
        host-tag: amd64
        script: s
        loop-on:
          - param: CC
            values: [gcc, clang]
        triggers:
          - name: post
            run-names: "{name}-{loop}"
    triggers:
      - name: final
  - name: post
    type: simple
    runs:
      - name: smoke
        host-tag: amd64
        script: s
        timeout: 1
  - name: final
    type: simple
    runs:
      - name: report
        host-tag: amd64
        script: s
scripts:
  s: |
    #!/bin/sh
    echo ok
)";

template <class T>
std::vector<T> only(const std::vector<saga_step>& steps) {
  std::vector<T> out;
  for (auto& s : steps)
    if (auto x = std::get_if<T>(&s))
      out.push_back(*x);
  return out;
}

struct chained_build {
  model_builder m;
  project_definition def;
  std::vector<planned_run> layout;

  chained_build() {
    def = *parse_project_definition(chain_yaml);
    m.add(streams::project("app"),
          {project_created{"app"}, project_definition_updated{1, chain_yaml, "h"}});
    build_number_allocated a;
    a.number = 1;
    a.trigger = "ci";
    a.definition_version = 1;
    a.params = {{"LEVEL", "build"}};
    a.sha = "abc123";
    a.ref = "refs/heads/main";
    m.add(streams::project("app"), {a});
  }
  const project_summary& p() { return *m.model.project("app"); }
  std::vector<saga_step> next() {
    auto b = m.model.build("app", 1);
    if (b)
      layout = *plan_existing(def, b->facts, b->added);
    return next_build_steps(p(), 1, &def, b ? &layout : nullptr);
  }
  void create() {
    auto steps = next();
    auto create = only<create_build_step>(steps);
    REQUIRE(create.size() == 1);
    auto plan = plan_build(def, "app", create[0].allocation);
    REQUIRE(plan);
    build_created b{"app", 1, "ci", create[0].allocation.params, "refs/heads/main", "abc123", "",
                    1, {}};
    for (auto& r : *plan)
      b.runs.push_back(r.name);
    m.add(streams::build("app", 1), {b});
  }
  void queue_all() {
    for (auto& q : only<queue_run_step>(next()))
      m.add(streams::run("app", 1, q.run.name), {run_queued{"app", 1, q.run.name, "amd64", "{}", 1, 120}});
  }
  void pass(const std::string& run, status st = status::passed) {
    m.add(streams::run("app", 1, run), {run_assigned{"w", 1}, run_started{"w"}, run_completed{st, 0, ""}});
  }
};

} // namespace

TEST_CASE("build plan: loop-on, env layering, git and the rundef's contents") {
  auto def = *parse_project_definition(chain_yaml);
  build_number_allocated a;
  a.number = 7;
  a.trigger = "ci";
  a.params = {{"LEVEL", "build"}};
  a.sha = "abc123";
  a.ref = "refs/heads/main";
  auto plan = plan_build(def, "app", a);
  REQUIRE(plan);
  REQUIRE(plan->size() == 2);
  CHECK((*plan)[0].name == "build-gcc");
  CHECK((*plan)[1].name == "build-clang");
  auto r = nlohmann::json::parse((*plan)[1].rundef);
  CHECK(r["env"]["CC"] == "clang");
  CHECK(r["env"]["LEVEL"] == "build");  // build params win
  CHECK(r["env"]["H_PROJECT"] == "app");
  CHECK(r["env"]["H_BUILD"] == "7");
  CHECK(r["env"]["H_RUN"] == "build-clang");
  CHECK(r["git"]["url"] == "https://git.example.com/app.git");
  CHECK(r["git"]["sha"] == "abc123");
  CHECK(r["timeout_s"] == 120);
  CHECK(r["script"] == "#!/bin/sh\necho ok\n");
  CHECK_FALSE(r.contains("secrets"));  // values are added at hand-out only

  a.only_runs = {"build-clang"};
  auto some = plan_build(def, "app", a);
  REQUIRE(some->size() == 1);
  CHECK((*some)[0].name == "build-clang");
}

TEST_CASE("process manager: allocated -> create, created -> queue its runs") {
  chained_build b;
  auto steps = b.next();
  REQUIRE(only<create_build_step>(steps).size() == 1);
  b.create();
  auto queue = only<queue_run_step>(b.next());
  REQUIRE(queue.size() == 2);
  CHECK(queue[0].run.name == "build-gcc");
  b.queue_all();
  CHECK(b.next().empty());  // nothing to do while runs are going
}

TEST_CASE("process manager: a passing run fires its chain named by the template") {
  chained_build b;
  b.create();
  b.queue_all();
  b.pass("build-gcc");
  auto add = only<add_runs_step>(b.next());
  REQUIRE(add.size() == 1);
  CHECK(add[0].trigger == "post");
  CHECK(add[0].parent_run == "build-gcc");
  CHECK(add[0].runs == std::vector<std::string>{"smoke-gcc"});
  b.m.add(streams::build("app", 1), {build_runs_added{"post", "build-gcc", {"smoke-gcc"}}});
  // Fired once only; now the chained run is to be queued, with its rundef.
  auto queue = only<queue_run_step>(b.next());
  REQUIRE(queue.size() == 1);
  CHECK(queue[0].run.name == "smoke-gcc");
  auto& smoke = b.layout.back();
  auto r = nlohmann::json::parse(smoke.rundef);
  CHECK(r["parent_run"] == "build-gcc");
  CHECK(r["timeout_s"] == 60);
}

TEST_CASE("process manager: a failed run does not chain and the build completes FAILED") {
  chained_build b;
  b.create();
  b.queue_all();
  b.pass("build-gcc", status::failed);
  CHECK(only<add_runs_step>(b.next()).empty());
  b.pass("build-clang");
  auto add = only<add_runs_step>(b.next());
  REQUIRE(add.size() == 1);
  b.m.add(streams::build("app", 1), {build_runs_added{"post", "build-clang", {"smoke-clang"}}});
  b.queue_all();
  b.pass("smoke-clang");
  auto done = only<complete_build_step>(b.next());
  REQUIRE(done.size() == 1);
  CHECK(done[0].result == status::failed);
}

TEST_CASE("process manager: all passed fires the build-level chain, then completes PASSED") {
  chained_build b;
  b.create();
  b.queue_all();
  for (auto r : {"build-gcc", "build-clang"}) {
    b.pass(r);
    auto add = only<add_runs_step>(b.next());
    REQUIRE(add.size() == 1);
    b.m.add(streams::build("app", 1), {build_runs_added{add[0].trigger, add[0].parent_run, add[0].runs}});
    b.queue_all();
    b.pass(add[0].runs[0]);
  }
  auto final = only<add_runs_step>(b.next());
  REQUIRE(final.size() == 1);
  CHECK(final[0].parent_run.empty());
  CHECK(final[0].runs == std::vector<std::string>{"report"});
  b.m.add(streams::build("app", 1), {build_runs_added{"final", "", {"report"}}});
  b.queue_all();
  b.pass("report");
  auto done = only<complete_build_step>(b.next());
  REQUIRE(done.size() == 1);
  CHECK(done[0].result == status::passed);
  b.m.add(streams::build("app", 1), {build_completed{status::passed}});
  CHECK(b.next().empty());  // idempotent: a completed build asks for nothing
}

TEST_CASE("process manager: a cancelled build cancels unfinished runs, then completes CANCELLED") {
  chained_build b;
  b.create();
  b.queue_all();
  b.m.add(streams::build("app", 1), {build_cancelled{"test"}});
  auto cancel = only<cancel_run_step>(b.next());
  CHECK(cancel.size() == 2);
  for (auto r : {"build-gcc", "build-clang"})
    b.m.add(streams::run("app", 1, r), {run_cancel_requested{"x"}, run_completed{status::cancelled, 0, ""}});
  auto done = only<complete_build_step>(b.next());
  REQUIRE(done.size() == 1);
  CHECK(done[0].result == status::cancelled);
}

TEST_CASE("watchdog: silent workers go offline, their runs are lost, late runs time out") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a", "b"});
  m.worker("w1", {"linux"}, 2);
  m.assign("p", 1, "a", "w1");
  m.add(streams::run("p", 1, "a"), {run_started{"w1"}});
  auto t0 = m.now;
  watchdog_config cfg{90s, 60s};
  std::map<std::string, std::int64_t> seen{{"w1", t0}};

  CHECK(watchdog_steps(m.model, t0 + std::chrono::nanoseconds{30s}.count(), seen, cfg).empty());
  auto steps = watchdog_steps(m.model, t0 + std::chrono::nanoseconds{91s}.count(), seen, cfg);
  REQUIRE(only<mark_offline_step>(steps).size() == 1);

  // Run "a" (timeout 60 s) is late after 60 + 60 s grace.
  seen["w1"] = t0 + std::chrono::nanoseconds{119s}.count();
  auto late = watchdog_steps(m.model, t0 + std::chrono::nanoseconds{121s}.count(), seen, cfg);
  REQUIRE(only<time_out_step>(late).size() == 1);
  CHECK(only<time_out_step>(late)[0].run.name == "a");

  m.add(streams::worker("w1"), {worker_offline{"silent"}});
  auto lost = only<lose_run_step>(watchdog_steps(m.model, t0, seen, cfg));
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].run.name == "a");
}
