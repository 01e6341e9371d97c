// The core end to end in one process: real actors on a real RocksDB log.
#include "core_fixture.hpp"
#include "actors/build_json.hpp"
#include "actors/system_view.hpp"
#include "events/streams.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <future>
#include <sstream>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> names(const domain::build_summary& b) {
  std::vector<std::string> out;
  for (auto& r : b.runs)
    out.push_back(r.name);
  return out;
}


} // namespace

TEST_CASE("core: a trigger numbers a build and queues its runs") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto b1 = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "test", 0});
  CHECK(b1.build == 1);
  CHECK(b1.runs == std::vector<std::string>{"unit-test", "lint"});
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.runs.size() == 2; }));
  auto b2 = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "test", 0});
  CHECK(b2.build == 2);
  CHECK(f.refused(core::trigger_build{"app", "nightly", {}, "", "", "", 0}) == "unknown_trigger");
  CHECK(f.refused(core::trigger_build{"nope", "ci", {}, "", "", "", 0}) == "not_found");
  auto queue = f.read<std::vector<domain::waiting_run>>(core::get_queue{});
  REQUIRE(queue.size() >= 2);
  CHECK(queue[0].reason == domain::wait_reason::no_worker);
}

TEST_CASE("core: a repeated trigger with the same command id returns the first build") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  core::request_context ctx{"alice", "cmd-1"};
  auto first = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0}, ctx);
  auto again = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0}, ctx);
  CHECK(first.build == 1);
  CHECK(again.build == 1);
  auto next = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(next.build == 2);
}

TEST_CASE("core: workers take runs, a chained run joins, and the build passes") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"Linux"}, 2);  // tags match case-insensitively
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", token, 2);
  REQUIRE(runs.size() == 2);
  for (auto& h : runs)
    f.finish(h, "w1");
  // lint passed: its chain adds smoke-lint to the same build.
  auto more = f.take("w1", token, 1);
  REQUIRE(more.size() == 1);
  CHECK(more[0].run.name == "smoke-lint");
  auto rundef = nlohmann::json::parse(more[0].rundef);
  CHECK(rundef["parent_run"] == "lint");
  CHECK(rundef["env"]["H_RUN"] == "smoke-lint");
  f.finish(more[0], "w1");
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.completed; }));
  auto b = f.build("app", 1);
  CHECK(b.result == status::passed);
  CHECK(names(b) == std::vector<std::string>{"unit-test", "lint", "smoke-lint"});
  // Each run says which trigger added it and from which run (the UI nests on it).
  auto j = core::build_json(b);
  CHECK(j["runs"][1]["trigger"] == "ci");
  CHECK(j["runs"][1]["parent_run"] == "");
  CHECK(j["runs"][2]["trigger"] == "smoke");
  CHECK(j["runs"][2]["parent_run"] == "lint");
  // The project lists its last build's outcome, and its triggers.
  auto projects = f.read<std::vector<core::project_info>>(core::list_projects{});
  REQUIRE(projects.size() == 1);
  CHECK(projects[0].last_build == 1);
  CHECK(projects[0].last_status == "PASSED");
  CHECK(projects[0].last_completed_ns >= projects[0].last_created_ns);
  auto detail = f.read<core::project_detail>(core::get_project{"app"});
  REQUIRE(detail.triggers.size() == 2);
  CHECK(detail.triggers[0].name == "ci");
  CHECK(detail.triggers[1].type == "simple");
}

TEST_CASE("core: a run a free worker can take is queued and assigned in one commit") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"linux"}, 2);
  REQUIRE(f.node->call(core::worker_checkin{"w1", token}));
  REQUIRE(wait_until([&] {
    auto workers = f.read<std::vector<core::worker_info>>(core::list_workers{});
    return workers.size() == 1 && workers[0].summary.online;
  }));
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", token, 2);
  REQUIRE(runs.size() == 2);
  for (auto& h : runs) {
    auto commits = f.log->read_stream(h.run.id(), stream_version{1}, 10);
    REQUIRE(commits);
    REQUIRE(commits->size() == 1);
    auto& events = commits->front().body.events;
    REQUIRE(events.size() == 2);
    CHECK(std::holds_alternative<run_queued>(events[0]));
    REQUIRE(std::holds_alternative<run_assigned>(events[1]));
    CHECK(std::get<run_assigned>(events[1]).worker == "w1");
  }
  // With its two slots taken, the next build's runs are only queued.
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(f.wait_build("app", 2, [](auto& b) { return b.runs.size() == 2; }));
  auto queued = f.log->read_stream(streams::run("app", 2, "lint"), stream_version{1}, 10);
  REQUIRE(queued);
  REQUIRE(queued->size() == 1);
  CHECK(queued->front().body.events.size() == 1);
}

TEST_CASE("core: a held check-in is answered when its worker gets a run or is to stop one") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"linux"}, 2);
  REQUIRE(f.node->call(core::worker_checkin{"w1", token}));
  auto held = [&](std::set<std::string> known = {}, std::set<std::string> stopping = {}) {
    core::worker_checkin c{"w1", token};
    c.hold = 10s;
    c.known_runs = std::move(known);
    c.known_stopping = std::move(stopping);
    return std::async(std::launch::async, [&f, c] { return f.node->call(c); });
  };
  auto reply_of = [](std::future<result<core::reply>>& answer) {
    REQUIRE(answer.wait_for(20s) == std::future_status::ready);
    auto r = answer.get();
    REQUIRE(r);
    return std::get<core::checkin_reply>(*r);
  };

  // Nothing for it: held for all of its hold, then answered.
  core::worker_checkin idle{"w1", token};
  idle.hold = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  auto out = f.node->call(idle);
  REQUIRE(out);
  CHECK(std::get<core::checkin_reply>(*out).waited);
  CHECK(std::get<core::checkin_reply>(*out).runs.empty());
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);

  // Held until a run is assigned to the worker, then answered with it.
  auto first = held();
  CHECK(first.wait_for(300ms) == std::future_status::timeout);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto handed = reply_of(first);
  CHECK_FALSE(handed.waited);
  CHECK_FALSE(handed.runs.empty());

  // Runs it knows of are no news; one of them to stop is.
  auto runs = f.take("w1", token, 2);
  REQUIRE(runs.size() == 2);
  auto stop = held({runs[0].run.path(), runs[1].run.path()});
  CHECK(stop.wait_for(300ms) == std::future_status::timeout);
  f.call<core::receipt>(core::cancel_run{runs[0].run});
  auto told = reply_of(stop);
  REQUIRE(told.cancel.size() == 1);
  CHECK(told.cancel[0] == runs[0].run);

  // A core that stops answers what it holds.
  auto last = held({runs[0].run.path(), runs[1].run.path()}, {runs[0].run.path()});
  CHECK(last.wait_for(300ms) == std::future_status::timeout);
  f.node->stop();
  CHECK(reply_of(last).waited);
}

TEST_CASE("core: a failed run fails the build, and a failed-only rerun remakes just it") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"linux"}, 2);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {{"X", "1"}}, "refs/heads/main", "abc", "", 0});
  auto runs = f.take("w1", token, 2);
  REQUIRE(runs.size() == 2);
  for (auto& h : runs)
    f.finish(h, "w1", h.run.name == "unit-test" ? status::failed : status::passed);
  auto smoke = f.take("w1", token, 1);
  REQUIRE(smoke.size() == 1);
  f.finish(smoke[0], "w1");
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.completed; }));
  CHECK(f.build("app", 1).result == status::failed);

  // A new definition must not change what the rerun is made of.
  f.call<core::receipt>(core::put_project{"app", std::string{chained_project} + "description: v2\n"});
  auto rerun = f.call<core::build_ref>(core::rerun_build{"app", 1, true});
  CHECK(rerun.build == 2);
  CHECK(rerun.runs == std::vector<std::string>{"unit-test"});
  auto b2 = f.build("app", 2);
  CHECK(b2.facts.definition_version == 1);
  CHECK(b2.facts.rerun_of == 1);
  CHECK(b2.facts.params == param_map{{"X", "1"}});
  CHECK(b2.facts.sha == "abc");
}

TEST_CASE("core: cancelling a build cancels queued runs and asks running ones to stop") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"linux"}, 1);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", token, 1);
  REQUIRE(runs.size() == 1);
  f.call<core::receipt>(core::report_run{runs[0].run, "w1", status::running, 0, ""});
  f.call<core::receipt>(core::cancel_build{"app", 1});
  CHECK(f.wait_build("app", 1, [&](auto& b) {
    auto running = b.run(runs[0].run.name);
    return running && running->cancel_requested;
  }));
  auto b = f.build("app", 1);
  CHECK_FALSE(b.completed);  // the running run has not stopped yet
  f.call<core::receipt>(core::report_run{runs[0].run, "w1", status::cancelled, -15, "killed"});
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.completed; }));
  b = f.build("app", 1);
  CHECK(b.result == status::cancelled);
  for (auto& r : b.runs)
    CHECK(r.status == status::cancelled);
}

TEST_CASE("core: a worker that stops checking in loses its runs to the queue") {
  core::core_config cfg;
  cfg.watchdog.worker_timeout = 300ms;
  cfg.watchdog_interval = 100ms;
  core_fixture f{{cfg}};
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto t1 = f.add_worker("w1", {"linux"}, 2);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", t1, 2);
  REQUIRE(runs.size() == 2);
  f.call<core::receipt>(core::report_run{runs[0].run, "w1", status::running, 0, ""});
  // w1 goes silent: both runs come back (attempt 2) and go to w2.
  CHECK(f.wait_build("app", 1, [](auto& b) {
    return b.runs.size() == 2 && b.runs[0].attempt == 2 && b.runs[1].attempt == 2;
  }));
  auto t2 = f.add_worker("w2", {"linux"}, 2);
  auto again = f.take("w2", t2, 2);
  CHECK(again.size() == 2);
  auto workers = f.read<std::vector<core::worker_info>>(core::list_workers{});
  REQUIRE(workers.size() == 2);
  CHECK_FALSE(workers[0].summary.online);
}

TEST_CASE("core: worker check-ins need the right token and an enlisted worker") {
  core_fixture f;
  auto t = f.call<core::worker_token>(core::register_worker{"w1", {"linux"}, 1, "{}"});
  CHECK(f.refused(core::worker_checkin{"w1", t.token}) == "not_enlisted");
  f.call<core::receipt>(core::enlist_worker{"w1"});
  CHECK(f.refused(core::worker_checkin{"w1", "wrong"}) == "unauthorized");
  CHECK(f.refused(core::worker_checkin{"w2", t.token}) == "not_found");
  CHECK(f.refused(core::worker_checkin{"w1", t.token}).empty());
  CHECK(f.refused(core::register_worker{"w1", {}, 1, "{}"}) == "already_exists");
  // A retried registration gets the same token back.
  core::request_context ctx{"admin", "reg-w3"};
  auto a = f.call<core::worker_token>(core::register_worker{"w3", {}, 1, "{}"}, ctx);
  auto b = f.call<core::worker_token>(core::register_worker{"w3", {}, 1, "{}"}, ctx);
  CHECK(a.token == b.token);
}

TEST_CASE("core: secrets reach the worker's rundef and are never in the log in clear") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  f.call<core::receipt>(core::set_secret{"app", "token", "s3cr3t-value-42"});
  auto token = f.add_worker("w1", {"linux"}, 1);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", token, 1);
  REQUIRE(runs.size() == 1);
  CHECK(nlohmann::json::parse(runs[0].rundef)["secrets"]["token"] == "s3cr3t-value-42");
  auto project = f.read<core::project_detail>(core::get_project{"app"});
  CHECK(project.info.secret_keys == std::vector<std::string>{"token"});
  f.node.reset();
  f.log->close();
  for (auto& e : std::filesystem::recursive_directory_iterator(f.dir.path() / "log")) {
    std::ifstream in{e.path(), std::ios::binary};
    std::stringstream bytes;
    bytes << in.rdbuf();
    CHECK(bytes.str().find("s3cr3t-value-42") == std::string::npos);
  }
}

TEST_CASE("core: state comes back after a restart and build numbers go on") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.runs.size() == 2; }));
  f.restart();
  auto b = f.build("app", 1);
  CHECK(b.runs.size() == 2);
  auto next = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(next.build == 2);
  auto builds = f.read<std::vector<domain::build_summary>>(core::list_builds{"app", 10, 0});
  REQUIRE(builds.size() == 2);
  CHECK(builds[0].number == 2);  // newest first
  CHECK(builds[1].number == 1);
  auto older = f.read<std::vector<domain::build_summary>>(core::list_builds{"app", 10, 2});
  REQUIRE(older.size() == 1);
  CHECK(older[0].number == 1);
}

TEST_CASE("core: idle actors passivate and come back with their state") {
  core::core_config cfg;
  cfg.passivate_after = 50ms;
  core_fixture f{{cfg}};
  f.call<core::receipt>(core::put_project{"app", chained_project});
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(wait_until([&] {
    auto s = f.node->stats();
    return s.live_actors == 0 && s.passivated > 0;
  }));
  auto next = f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  CHECK(next.build == 2);
}

TEST_CASE("core: a project's actor snapshots every N events and reloads from it") {
  core::core_config cfg;
  cfg.snapshot_every = 4;
  cfg.passivate_after = 50ms;
  core_fixture f{{cfg}};
  f.call<core::receipt>(core::put_project{"app", chained_project});
  for (int i = 0; i < 6; ++i)
    f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto snap = f.log->load_snapshot(streams::project("app"));
  REQUIRE(snap);
  REQUIRE(*snap);
  CHECK((*snap)->version.value >= 4);
  CHECK(wait_until([&] { return f.node->stats().live_actors == 0; }));
  CHECK(f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0}).build == 7);
}

TEST_CASE("core: a replay at a past sequence equals the live state captured at that sequence") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto token = f.add_worker("w1", {"linux"}, 2);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  for (auto& h : f.take("w1", token, 2))
    f.finish(h, "w1", h.run.name == "lint" ? status::failed : status::passed);
  REQUIRE(f.wait_build("app", 1, [](auto& b) { return b.completed; }));
  // Quiet now: capture the live state and the sequence it stands at.
  auto at = f.log->last_seq();
  auto live = f.read<domain::build_summary>(core::get_build{"app", 1});
  REQUIRE(f.node->read(core::get_build{"app", 1}, at));
  auto live_workers = f.read<std::vector<core::worker_info>>(core::list_workers{});

  // Life goes on.
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  f.call<core::receipt>(core::delist_worker{"w1"});

  domain::system_view past;
  auto commits = f.log->read_all({0}, 1u << 20);
  REQUIRE(commits);
  for (auto& c : *commits)
    if (c.seq <= at)
      past.apply(c);
  CHECK(past.seq == at);
  auto& b = past.builds.at(streams::build("app", 1).value);
  CHECK(b.completed);
  CHECK(b.result == live.result);
  CHECK(b.runs == live.run_names());
  for (auto& r : live.runs) {
    auto& replayed = past.runs.at(streams::run("app", 1, r.name).value);
    CHECK(replayed.status == r.status);
    CHECK(replayed.worker == r.worker);
  }
  CHECK(past.builds.count(streams::build("app", 2).value) == 0);
  auto& w = past.workers.at(streams::worker("w1").value);
  CHECK(w.enlisted == live_workers.at(0).summary.enlisted);
  CHECK(w.online == live_workers.at(0).summary.online);
  CHECK(w.enlisted);
}

TEST_CASE("core: a check-in that lists its active runs loses only the RUNNING ones it lacks") {
  core_fixture f;
  f.call<core::receipt>(core::put_project{"app", chained_project});
  auto t1 = f.add_worker("w1", {"linux"}, 2);
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto runs = f.take("w1", t1, 2);
  REQUIRE(runs.size() == 2);
  for (auto& r : runs)
    f.call<core::receipt>(core::report_run{r.run, "w1", status::running, 0, ""});
  // Both listed: nothing happens.
  f.call<core::checkin_reply>(
    core::worker_checkin{"w1", t1, true, std::set<std::string>{runs[0].run.path(), runs[1].run.path()}});
  // The worker came back with only the first.
  f.call<core::checkin_reply>(
    core::worker_checkin{"w1", t1, true, std::set<std::string>{runs[0].run.path()}});
  CHECK(f.wait_build("app", 1, [&](auto& b) {
    auto lost = b.run(runs[1].run.name);
    return lost && lost->attempt == 2;
  }));
  auto b = f.build("app", 1);
  auto kept = b.run(runs[0].run.name);
  REQUIRE(kept);
  CHECK(kept->status == status::running);
  CHECK(kept->attempt == 1);
}

// In a cluster a core copies consoles and commits apart: RunCompleted says
// how long the console was when the run ended, and a core whose copy of the
// consoles is shorter does not call the run finished to a reader yet.
TEST_CASE("core: a console read is finished only once it holds what its run ended with") {
  core_fixture f;
  f.node.reset();
  f.config.console = f.log.get();
  f.start();
  f.call<core::receipt>(core::put_project{"app", one_run_project});
  auto token = f.add_worker("w1", {"linux"}, 1);
  auto read = [&](const domain::run_key& run) {
    return f.read<core::console_text>(core::read_console{run, 0, 1 << 20});
  };

  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto first = f.take("w1", token, 1).at(0).run;
  f.call<core::receipt>(core::report_run{first, "w1", status::running, 0, ""});
  f.call<core::console_ack>(core::append_console{first, "w1", 0, "hello\n"});
  // As if the last bytes went into the consoles through another core whose
  // copy this one has not got yet.
  f.call<core::receipt>(core::report_run{first, "w1", status::passed, 0, "", 100});
  auto lagging = read(first);
  CHECK(lagging.data == "hello\n");
  CHECK(lagging.status == status::passed);
  CHECK_FALSE(lagging.finished);

  // Held whole (the size this core's own console gives, at least): finished.
  CHECK(f.wait_build("app", 1, [](auto& b) { return b.completed; }));
  f.call<core::build_ref>(core::trigger_build{"app", "ci", {}, "", "", "", 0});
  auto second = f.take("w1", token, 1).at(0).run;
  f.call<core::receipt>(core::report_run{second, "w1", status::running, 0, ""});
  f.call<core::console_ack>(core::append_console{second, "w1", 0, "bye\n"});
  f.call<core::receipt>(core::report_run{second, "w1", status::passed, 0, ""});
  auto whole = read(second);
  CHECK(whole.data == "bye\n");
  CHECK(whole.finished);
  auto detail = f.read<core::run_detail>(core::get_run{second});
  CHECK(detail.summary.console_size == 4);
}
