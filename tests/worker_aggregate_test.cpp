// The worker aggregate, pure: registration, enlisting, online state, delete.
#include "actors/worker_aggregate.hpp"
#include "aggregate_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

namespace {

const worker::register_worker lab3{"lab-3", {"amd64"}, 4, "{}", "feed"};

worker::state step(worker::state s, const worker::command& c) {
  auto r = worker::decide(s, c);
  if (!r)
    FAIL(r.error().code << ": " << r.error().message);
  for (auto& e : *r)
    worker::apply(s, e);
  return s;
}

std::string refused(const worker::state& s, const worker::command& c) {
  return kiln::test::refusal(worker::decide, s, c);
}

} // namespace

TEST_CASE("a registered worker is pending until enlisted", "[worker]") {
  auto s = step({}, lab3);
  CHECK(s.live());
  CHECK_FALSE(s.enlisted);
  s = step(s, worker::enlist_worker{});
  CHECK(s.enlisted);
  CHECK(worker::decide(s, worker::enlist_worker{})->empty());
  s = step(s, worker::delist_worker{"maintenance"});
  CHECK_FALSE(s.enlisted);
  CHECK(refused(s, lab3) == "already_exists");
}

TEST_CASE("online and offline change only on a change", "[worker]") {
  auto s = step(step({}, lab3), worker::mark_online{});
  CHECK(s.online);
  CHECK(worker::decide(s, worker::mark_online{})->empty());
  s = step(s, worker::mark_offline{"no check-in for 90 s"});
  CHECK_FALSE(s.online);
  CHECK(worker::decide(s, worker::mark_offline{"again"})->empty());
}

TEST_CASE("a deleted worker may register again, bad registrations are refused", "[worker]") {
  auto s = step(step(step({}, lab3), worker::enlist_worker{}), worker::delete_worker{"gone"});
  CHECK_FALSE(s.live());
  CHECK(refused(s, worker::enlist_worker{}) == "not_found");
  s = step(s, lab3);
  CHECK(s.live());
  CHECK_FALSE(s.enlisted);  // a new key needs a new enlistment
  CHECK(refused({}, worker::register_worker{"bad name!", {}, 1, "", "x"}) == "invalid_argument");
  CHECK(refused({}, worker::register_worker{"w", {}, 0, "", "x"}) == "invalid_argument");
  CHECK(refused({}, worker::register_worker{"w", {}, 1, "", ""}) == "invalid_argument");
}
