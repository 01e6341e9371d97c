// The run aggregate, pure: given past events and a command, the events it
// makes or the error it gives. No actors, no storage.
#include "actors/run_aggregate.hpp"
#include "aggregate_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

namespace {

run::state given(const std::vector<event>& history) {
  run::state s;
  for (auto& e : history)
    run::apply(s, e);
  return s;
}

const event queued = run_queued{"app", 1, "unit", "amd64", "{}", 1};
const event assigned = run_assigned{"w1", 1};
const event started = run_started{"w1"};
const event passed = run_completed{status::passed, 0, ""};

std::vector<event> then(const run::state& s, const run::command& c) {
  auto r = run::decide(s, c);
  if (!r)
    FAIL("refused: " << r.error().code << ": " << r.error().message);
  return *r;
}

std::string refused(const run::state& s, const run::command& c) {
  return kiln::test::refusal(run::decide, s, c);
}

} // namespace

TEST_CASE("a run queued with a worker is queued and assigned in one decision", "[run]") {
  auto e = then(given({}), run::queue_run{"app", 1, "unit", "amd64", "{}", 30, "w1"});
  REQUIRE(e == std::vector<event>{run_queued{"app", 1, "unit", "amd64", "{}", 1, 30},
                                  run_assigned{"w1", 1}});
  auto s = given(e);
  CHECK(s.status == status::queued);
  CHECK(s.worker == "w1");
  CHECK(then(s, run::start_run{"w1"}) == std::vector<event>{run_started{"w1"}});
  CHECK(refused(s, run::queue_run{"app", 1, "unit", "amd64", "{}", 30, "w2"}) == "already_exists");
}

TEST_CASE("a run goes QUEUED -> assigned -> RUNNING -> PASSED", "[run]") {
  auto s = given({});
  auto e = then(s, run::queue_run{"app", 1, "unit", "amd64", "{}"});
  REQUIRE(e.size() == 1);
  run::apply(s, e[0]);
  CHECK(s.status == status::queued);
  CHECK(s.attempt == 1);

  e = then(s, run::assign_run{"w1"});
  REQUIRE(e == std::vector<event>{run_assigned{"w1", 1}});
  run::apply(s, e[0]);
  CHECK(s.worker == "w1");

  e = then(s, run::start_run{"w1"});
  REQUIRE(e == std::vector<event>{run_started{"w1"}});
  run::apply(s, e[0]);
  CHECK(s.status == status::running);

  e = then(s, run::store_artifact{"w1", "out/app", 10, "ab"});
  run::apply(s, e.at(0));
  CHECK(s.artifacts.size() == 1);

  e = then(s, run::complete_run{"w1", status::passed, 0, ""});
  REQUIRE(e == std::vector<event>{run_completed{status::passed, 0, ""}});
  run::apply(s, e[0]);
  CHECK(s.finished());
}

TEST_CASE("a run's end carries the console size the deciding core held", "[run]") {
  auto e = then(given({queued, assigned, started}), run::complete_run{"w1", status::failed, 2, "", 4096});
  REQUIRE(e == std::vector<event>{run_completed{status::failed, 2, "", 4096}});
}

TEST_CASE("repeated worker reports change nothing", "[run]") {
  CHECK(then(given({queued, assigned, started}), run::start_run{"w1"}).empty());
  CHECK(then(given({queued, assigned, started, passed}),
             run::complete_run{"w1", status::passed, 0, ""}).empty());
}

TEST_CASE("illegal transitions are refused with an error code", "[run]") {
  CHECK(refused(given({}), run::assign_run{"w1"}) == "not_found");
  CHECK(refused(given({queued}), run::queue_run{"app", 1, "unit", "amd64", "{}"}) == "already_exists");
  CHECK(refused(given({queued, assigned}), run::assign_run{"w2"}) == "illegal_transition");
  CHECK(refused(given({queued}), run::start_run{"w1"}) == "not_assigned_to_you");
  CHECK(refused(given({queued, assigned}), run::start_run{"w2"}) == "not_assigned_to_you");
  CHECK(refused(given({queued, assigned, started}), run::complete_run{"w2", status::passed, 0, ""})
        == "not_assigned_to_you");
  CHECK(refused(given({queued, assigned, started}), run::complete_run{"w1", status::running, 0, ""})
        == "invalid_argument");
  CHECK(refused(given({queued, assigned, started, passed}),
                run::complete_run{"w1", status::failed, 1, ""}) == "finished");
  CHECK(refused(given({queued, assigned, started, passed}), run::cancel_run{"late"}) == "finished");
  CHECK(refused(given({queued, assigned}), run::time_out_run{"x"}) == "illegal_transition");
  CHECK(refused(given({queued}), run::lose_run{"gone", 3}) == "illegal_transition");
  CHECK(refused(given({queued, assigned, started}), run::store_artifact{"w1", "", 1, "x"})
        == "invalid_argument");
  CHECK(refused(given({queued, assigned, started}), run::report_tests{"w9", "s", {}})
        == "not_assigned_to_you");
}

TEST_CASE("cancelling a queued run ends it, a held run waits for its worker", "[run]") {
  auto q = then(given({queued}), run::cancel_run{"by alice"});
  REQUIRE(q.size() == 2);
  auto s = given({queued, q[0], q[1]});
  CHECK(s.status == status::cancelled);

  auto r = then(given({queued, assigned, started}), run::cancel_run{"by bob"});
  REQUIRE(r == std::vector<event>{run_cancel_requested{"by bob"}});
  auto held = given({queued, assigned, started, r[0]});
  CHECK(held.status == status::running);
  CHECK(held.cancel_requested);
  CHECK(then(held, run::cancel_run{"again"}).empty());
  CHECK(refused(given({queued, r[0]}), run::assign_run{"w1"}) == "illegal_transition");
  auto done = then(held, run::complete_run{"w1", status::cancelled, -15, "killed"});
  REQUIRE(done.size() == 1);
}

TEST_CASE("a lost run is requeued with attempt + 1, up to the limit, then FAILED", "[run]") {
  auto s = given({queued, assigned, started});
  auto e = then(s, run::lose_run{"worker w1 stopped checking in", 2});
  REQUIRE(e == std::vector<event>{run_requeued{"worker w1 stopped checking in", 2}});
  run::apply(s, e[0]);
  CHECK(s.status == status::queued);
  CHECK(s.worker.empty());
  CHECK(s.attempt == 2);

  e = then(s, run::assign_run{"w2"});
  CHECK(e == std::vector<event>{run_assigned{"w2", 2}});
  run::apply(s, e[0]);
  e = then(s, run::lose_run{"w2 gone too", 2});
  REQUIRE(e.size() == 1);
  auto failed = std::get<run_completed>(e[0]);
  CHECK(failed.status == status::failed);
  CHECK(failed.message.find("lost 2 times") != std::string::npos);
}

TEST_CASE("a run is lost only from the worker that still holds it", "[run]") {
  auto s = given({queued, assigned, started});  // held by w1
  CHECK(refused(s, run::lose_run{"w9 restarted", 3, "w9"}) == "not_assigned_to_you");
  CHECK(then(s, run::lose_run{"w1 restarted", 3, "w1"}).size() == 1);
}

TEST_CASE("a RUNNING run past its time times out", "[run]") {
  auto e = then(given({queued, assigned, started}), run::time_out_run{"5 minutes"});
  REQUIRE(e.size() == 1);
  CHECK(std::get<run_completed>(e[0]).status == status::timeout);
}

TEST_CASE("apply ignores events of other aggregates", "[run]") {
  auto s = given({queued});
  run::apply(s, build_completed{status::failed});
  run::apply(s, worker_online{});
  CHECK(s.status == status::queued);
  CHECK(s.name == "unit");
}
