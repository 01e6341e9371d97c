// `kiln replay`: the state as of any sequence or time, folded from a history
// written the way the live system writes it (decide, then an expected-version
// append).
#include "actors/system_view.hpp"
#include "events/streams.hpp"
#include "log_fixture.hpp"
#include "support/process.hpp"

#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;

namespace {

constexpr std::int64_t t0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z
constexpr std::int64_t second = 1'000'000'000;

// Reads the stream, folds, decides, appends: what an aggregate's host does.
template <class State, class Command, class Decide, class Apply>
global_seq execute(storage::event_log& log, const stream_id& stream, const Command& cmd,
                   Decide decide, Apply apply) {
  State s;
  auto commits = log.read_stream(stream, {1}, SIZE_MAX);
  REQUIRE(commits);
  for (auto& c : *commits)
    for (auto& e : c.body.events)
      apply(s, e);
  auto events = decide(s, cmd);
  if (!events)
    FAIL(events.error().code << ": " << events.error().message);
  storage::append_request req{stream, log.last_version(stream).value(), *events, {}};
  req.meta.time_unix_ns = t0 + static_cast<std::int64_t>(log.last_seq().value + 1) * second;
  req.meta.principal = "test";
  auto r = log.append(req);
  REQUIRE(r);
  return r->seq;
}

auto project_cmd = [](auto& log, const std::string& name, const project::command& c) {
  return execute<project::state>(log, streams::project(name), c, project::decide, project::apply);
};
auto build_cmd = [](auto& log, const std::string& p, std::uint32_t n, const build::command& c) {
  return execute<build::state>(log, streams::build(p, n), c, build::decide, build::apply);
};
auto run_cmd = [](auto& log, const std::string& p, std::uint32_t n, const std::string& r,
                  const run::command& c) {
  return execute<run::state>(log, streams::run(p, n, r), c, run::decide, run::apply);
};
auto worker_cmd = [](auto& log, const std::string& w, const worker::command& c) {
  return execute<worker::state>(log, streams::worker(w), c, worker::decide, worker::apply);
};

const std::string app_yaml =
  "timeout: 5\ntriggers:\n  - {name: ci, type: simple, runs: [{name: unit, host-tag: amd64, "
  "script: s}, {name: lint, host-tag: amd64, script: s}]}\nscripts: {s: \"true\"}\n";

nlohmann::json replay(const temp_dir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{KILN_BINARY, "replay", "--data", dir.path().string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto [status, out] = kiln::test::run(argv);
  INFO(out);
  REQUIRE(status == 0);
  return nlohmann::json::parse(out.substr(out.find('{')));
}

nlohmann::json find_run(const nlohmann::json& state, const std::string& name) {
  for (auto& r : state["runs"])
    if (r["name"] == name)
      return r;
  return nullptr;
}

} // namespace

TEST_CASE("replay shows the state as of a sequence, a time, or now", "[replay][cli]") {
  temp_dir dir;
  global_seq queued_at, passed_at;
  {
    auto log = open_log(dir / "log");
    project_cmd(*log, "app", project::put_definition{"app", app_yaml});
    project_cmd(*log, "app", project::allocate_build{"ci"});
    build_cmd(*log, "app", 1,
              build::create_build{{"app", 1, "ci", {{"K", "v"}}, "", "", "manual", 1, {"unit", "lint"}}});
    run_cmd(*log, "app", 1, "unit", run::queue_run{"app", 1, "unit", "amd64", "{}"});
    queued_at = run_cmd(*log, "app", 1, "lint", run::queue_run{"app", 1, "lint", "amd64", "{}"});
    worker_cmd(*log, "w1", worker::register_worker{"w1", {"amd64"}, 2, "{}", "hash"});
    worker_cmd(*log, "w1", worker::enlist_worker{});
    run_cmd(*log, "app", 1, "unit", run::assign_run{"w1"});
    run_cmd(*log, "app", 1, "unit", run::start_run{"w1"});
    passed_at = run_cmd(*log, "app", 1, "unit", run::complete_run{"w1", status::passed, 0, ""});
    project_cmd(*log, "other", project::put_definition{"other", app_yaml});
  }

  auto now = replay(dir);
  CHECK(now["as_of"]["seq"] == passed_at.value + 1);
  CHECK(now["projects"].size() == 2);
  CHECK(find_run(now, "unit")["status"] == "PASSED");
  CHECK(find_run(now, "unit")["worker"] == "w1");
  CHECK(find_run(now, "lint")["status"] == "QUEUED");
  CHECK(now["builds"][0]["status"] == "RUNNING");
  CHECK(now["builds"][0]["params"]["K"] == "v");
  CHECK(now["workers"][0]["enlisted"] == true);

  auto then = replay(dir, {"--at", std::to_string(queued_at.value)});
  CHECK(then["as_of"]["seq"] == queued_at.value);
  CHECK(find_run(then, "unit")["status"] == "QUEUED");
  CHECK(then["builds"][0]["status"] == "QUEUED");
  CHECK(then["workers"].empty());
  CHECK(then["projects"].size() == 1);

  // The commit at sequence n was stamped t0 + n seconds.
  auto by_time = replay(dir, {"--at", "2026-01-01T00:00:05Z"});
  CHECK(by_time["as_of"]["seq"] == 5);
  auto with_offset = replay(dir, {"--at", "2026-01-01T01:00:05.5+01:00"});
  CHECK(with_offset["as_of"]["seq"] == 5);
  CHECK(replay(dir, {"--at", "2025-12-31T23:59:59Z"})["projects"].empty());

  auto only_other = replay(dir, {"--project", "other"});
  CHECK(only_other["projects"].size() == 1);
  CHECK(only_other["runs"].empty());
}

TEST_CASE("the system view folds each stream with its aggregate's apply", "[replay]") {
  temp_dir dir;
  auto log = open_log(dir / "log");
  project_cmd(*log, "app", project::put_definition{"app", app_yaml});
  project_cmd(*log, "app", project::allocate_build{"ci"});
  project_cmd(*log, "app", project::set_secret{"token", "sealed"});
  system_view view;
  auto all = log->read_all({0}, 100);
  REQUIRE(all);
  for (auto& c : *all)
    view.apply(c);
  auto& p = view.projects.at("project/app");
  CHECK(p.last_build == 1);
  CHECK(p.secrets.at("token") == "sealed");
  CHECK(p.definition_version == 1);
}

TEST_CASE("replay refuses a bad --at clearly", "[replay][cli]") {
  temp_dir dir;
  { auto log = open_log(dir / "log"); }
  auto [status, out] = kiln::test::run({KILN_BINARY, "replay", "--data", dir.path().string(), "--at", "yesterday"});
  CHECK(status == 2);
  CHECK(out.find("RFC 3339") != std::string::npos);
}
