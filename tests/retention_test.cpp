// Retention, pure: which runs' artifacts a policy expires; pins; the run
// aggregate's expiry; the policy's validation.
#include "actors/build_aggregate.hpp"
#include "actors/retention.hpp"
#include "actors/run_aggregate.hpp"
#include "aggregate_fixture.hpp"
#include "model_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;

namespace {

const std::int64_t day_ns = 86'400'000'000'000;

std::string with_retention(const std::string& policy) {
  return std::string{simple_yaml} + "retention:\n" + policy;
}

// Build n with one run "a" that stored `artifacts`, completed at `now`.
void finished_build(model_builder& m, std::uint32_t n, int artifacts, bool complete = true) {
  m.build("p", n, {"a"});
  m.assign("p", n, "a", "w");
  std::vector<event> events{run_started{"w"}};
  for (int i = 0; i < artifacts; ++i)
    events.push_back(run_artifact_stored{"f" + std::to_string(i), 1, "x"});
  events.push_back(run_completed{status::passed, 0, ""});
  m.add(streams::run("p", n, "a"), events);
  if (complete)
    m.add(streams::build("p", n), {build_completed{status::passed}});
}

std::vector<std::uint32_t> expiring(const read_model& m, std::int64_t now) {
  std::vector<std::uint32_t> out;
  for (auto& e : expired_artifacts(m, now))
    out.push_back(e.run.build);
  return out;
}

} // namespace

TEST_CASE("retention: beyond the newest keep-builds, pinned builds excepted") {
  model_builder m;
  m.project("p", with_retention("  keep-builds: 2\n"));
  for (std::uint32_t n = 1; n <= 4; ++n)
    finished_build(m, n, 1);
  finished_build(m, 5, 0);                  // no artifacts: nothing to do
  finished_build(m, 6, 1, false);           // not complete: not counted, kept
  auto now = m.now;
  CHECK(expiring(m.model, now) == std::vector<std::uint32_t>{3, 2, 1});  // 5 and 4 are the newest
  auto reasons = expired_artifacts(m.model, now);
  CHECK(reasons[0].reason == "build 3 is not among the newest 2");
  CHECK(reasons[0].run.name == "a");

  m.add(streams::build("p", 2), {build_pinned{"v1.0", "release"}});
  CHECK(expiring(m.model, now) == std::vector<std::uint32_t>{3, 1});
  m.add(streams::run("p", 3, "a"), {run_artifacts_expired{"r"}});
  CHECK(expiring(m.model, now) == std::vector<std::uint32_t>{1});
  m.add(streams::build("p", 2), {build_unpinned{"done"}});
  CHECK(expiring(m.model, now) == std::vector<std::uint32_t>{2, 1});
  // The snapshot keeps pins, counts and expiries.
  auto back = read_model::decode(m.model.encode());
  REQUIRE(back);
  CHECK(expiring(*back, now) == std::vector<std::uint32_t>{2, 1});
}

TEST_CASE("retention: keep-days counts from each build's end") {
  model_builder m;
  m.project("p", with_retention("  keep-days: 30\n"));
  finished_build(m, 1, 2);
  auto ended = m.now;
  CHECK(expiring(m.model, ended + 30 * day_ns).empty());
  auto later = expired_artifacts(m.model, ended + 30 * day_ns + 1);
  REQUIRE(later.size() == 1);
  CHECK(later[0].reason == "build 1 ended more than 30 days ago");
  // No policy, nothing expires.
  model_builder none;
  none.project("p", simple_yaml);
  finished_build(none, 1, 1);
  CHECK(expiring(none.model, none.now + 1000 * day_ns).empty());
}

TEST_CASE("retention: a policy needs a limit, and limits are positive") {
  auto empty = parse_project_definition(with_retention("  {}\n"));
  REQUIRE_FALSE(empty);
  CHECK_THAT(empty.error().message, Catch::Contains("'keep-days' and/or 'keep-builds'"));
  auto zero = parse_project_definition(with_retention("  keep-days: 0\n"));
  REQUIRE_FALSE(zero);
  CHECK_THAT(zero.error().message, Catch::StartsWith("line 12, column 14: "));
  auto unknown = parse_project_definition(with_retention("  keep-forever: true\n"));
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message, Catch::Contains("keep-forever"));
  auto ok = parse_project_definition(with_retention("  keep-days: 7\n  keep-builds: 20\n"));
  REQUIRE(ok);
  CHECK(ok->retention.keep_days == 7);
  CHECK(ok->retention.keep_builds == 20);
}

TEST_CASE("retention: pins and expiries in the aggregates") {
  build::state b;
  build_created facts;
  facts.runs = {"a"};
  auto created = build::decide(b, build::create_build{facts});
  REQUIRE(created);
  for (auto& e : *created)
    build::apply(b, e);
  auto pin = build::decide(b, build::pin_build{"v1.2", "release"});
  REQUIRE(pin);
  REQUIRE(pin->size() == 1);
  build::apply(b, (*pin)[0]);
  CHECK(b.pinned);
  CHECK(b.pin_name == "v1.2");
  CHECK(build::decide(b, build::pin_build{"v1.2", "again"})->empty());
  auto unpin = build::decide(b, build::unpin_build{"x"});
  REQUIRE(unpin);
  build::apply(b, (*unpin)[0]);
  CHECK_FALSE(b.pinned);
  CHECK(build::decide(b, build::unpin_build{"x"})->empty());

  run::state r;
  r.exists = true;
  r.status = status::running;
  CHECK(refusal(run::decide, r, run::command{run::expire_artifacts{"old"}}) == "illegal_transition");
  r.status = status::passed;
  CHECK(run::decide(r, run::expire_artifacts{"old"})->empty());  // nothing stored
  r.artifacts.push_back({"out.bin", 3, "abc"});
  auto expired = run::decide(r, run::expire_artifacts{"old"});
  REQUIRE(expired);
  REQUIRE(expired->size() == 1);
  run::apply(r, (*expired)[0]);
  CHECK(r.artifacts_expired);
  CHECK(run::decide(r, run::expire_artifacts{"old"})->empty());
}
