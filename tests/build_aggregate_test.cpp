// The build aggregate, pure: creation is frozen, chained runs join with
// unique names, cancel and completion are final.
#include "actors/build_aggregate.hpp"
#include "aggregate_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

namespace {

const build_created facts{"app", 7, "ci", {{"A", "1"}}, "refs/heads/main", "abc", "push", 3,
                          {"build-gcc", "build-clang"}};

build::state fold(const std::vector<event>& es) {
  build::state s;
  for (auto& e : es)
    build::apply(s, e);
  return s;
}

std::string refused(const build::state& s, const build::command& c) {
  return kiln::test::refusal(build::decide, s, c);
}

} // namespace

TEST_CASE("a build is created once, with unique run names", "[build]") {
  auto r = build::decide({}, build::create_build{facts});
  REQUIRE(r);
  auto s = fold(*r);
  CHECK(s.created.definition_version == 3);
  CHECK(s.runs.size() == 2);
  CHECK(refused(s, build::create_build{facts}) == "already_exists");
  auto dup = facts;
  dup.runs = {"a", "a"};
  CHECK(refused({}, build::create_build{dup}) == "invalid_argument");
}

TEST_CASE("chained runs join the build, a clashing name is refused", "[build]") {
  auto s = fold({facts});
  auto r = build::decide(s, build::add_runs{"post-build", "build-gcc", {"smoke-gcc"}});
  REQUIRE(r);
  build::apply(s, r->at(0));
  CHECK(s.runs.back() == "smoke-gcc");
  CHECK(refused(s, build::add_runs{"post-build", "build-gcc", {"smoke-gcc"}}) == "duplicate_run");
  CHECK(refused(s, build::add_runs{"post-build", "x", {"build-gcc"}}) == "duplicate_run");
}

TEST_CASE("cancel and completion are final", "[build]") {
  auto s = fold({facts, build_cancelled{"by alice"}});
  CHECK(build::decide(s, build::cancel_build{"again"})->empty());
  CHECK(refused(s, build::add_runs{"t", "", {"late"}}) == "finished");
  auto done = fold({facts, build_completed{status::failed}});
  CHECK(refused(done, build::cancel_build{"too late"}) == "finished");
  CHECK(build::decide(done, build::complete_build{status::failed})->empty());
  CHECK(refused(done, build::complete_build{status::passed}) == "finished");
  CHECK(refused(fold({facts}), build::complete_build{status::running}) == "invalid_argument");
  CHECK(refused({}, build::cancel_build{"x"}) == "not_found");
}

TEST_CASE("a build passes iff every run passed", "[build]") {
  using st = status;
  CHECK(build::outcome(false, {st::passed, st::passed}) == st::passed);
  CHECK(build::outcome(false, {st::passed, st::failed}) == st::failed);
  CHECK(build::outcome(false, {st::passed, st::timeout}) == st::failed);
  CHECK(build::outcome(false, {st::passed, st::running}) == st::running);
  CHECK(build::outcome(false, {st::queued}) == st::running);
  CHECK(build::outcome(true, {st::passed, st::cancelled}) == st::cancelled);
  CHECK(build::outcome(true, {st::running}) == st::running);
}
