// The project aggregate, pure: definitions, secrets, deletion, build numbers.
#include "actors/project_aggregate.hpp"
#include "aggregate_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

namespace {

const std::string yaml_v1 =
  "timeout: 5\ntriggers:\n  - {name: ci, type: simple, runs: [{name: a, host-tag: x, script: s}]}\n"
  "scripts: {s: \"true\"}\n";
const std::string yaml_v2 = yaml_v1 + "description: second\n";

project::state fold(project::state s, const std::vector<event>& es) {
  for (auto& e : es)
    project::apply(s, e);
  return s;
}

project::state step(const project::state& s, const project::command& c) {
  auto r = project::decide(s, c);
  if (!r)
    FAIL(r.error().code << ": " << r.error().message);
  return fold(s, *r);
}

std::string refused(const project::state& s, const project::command& c) {
  return kiln::test::refusal(project::decide, s, c);
}

} // namespace

TEST_CASE("a PUT creates, a changed PUT versions, the same PUT changes nothing", "[project]") {
  project::state s;
  auto first = project::decide(s, project::put_definition{"app", yaml_v1});
  REQUIRE(first);
  REQUIRE(first->size() == 2);
  CHECK(std::holds_alternative<project_created>((*first)[0]));
  s = fold(s, *first);
  CHECK(s.definition_version == 1);
  CHECK(s.content_sha256 == project::content_hash(yaml_v1));
  CHECK(project::decide(s, project::put_definition{"app", yaml_v1})->empty());
  s = step(s, project::put_definition{"app", yaml_v2});
  CHECK(s.definition_version == 2);
  CHECK(s.yaml == yaml_v2);
}

TEST_CASE("a bad definition is refused with its line and column", "[project]") {
  auto r = project::decide({}, project::put_definition{"app", "timeout: 5\ntriggers: nope\n"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid_definition");
  CHECK(r.error().message.find("line 2, column 11") != std::string::npos);
}

TEST_CASE("build numbers count 1, 2, 3 and survive delete and re-create", "[project]") {
  auto s = step({}, project::put_definition{"app", yaml_v1});
  for (std::uint32_t n = 1; n <= 3; ++n) {
    auto r = project::decide(s, project::allocate_build{"ci"});
    REQUIRE(r);
    CHECK(std::get<build_number_allocated>(r->at(0)).number == n);
    CHECK(std::get<build_number_allocated>(r->at(0)).definition_version == 1);
    s = fold(s, *r);
  }
  CHECK(refused(s, project::allocate_build{"nightly"}) == "unknown_trigger");
  s = step(s, project::delete_project{"retired"});
  CHECK(refused(s, project::allocate_build{"ci"}) == "not_found");
  s = step(s, project::put_definition{"app", yaml_v1});
  CHECK(s.definition_version == 2);
  auto r = project::decide(s, project::allocate_build{"ci"});
  CHECK(std::get<build_number_allocated>(r->at(0)).number == 4);
}

TEST_CASE("secrets are set, replaced and removed, keys are plain names", "[project]") {
  auto s = step({}, project::put_definition{"app", yaml_v1});
  s = step(s, project::set_secret{"token", "sealed-1"});
  s = step(s, project::set_secret{"token", "sealed-2"});
  CHECK(s.secrets.at("token") == "sealed-2");
  CHECK(refused(s, project::set_secret{"../etc", "x"}) == "invalid_argument");
  CHECK(refused(s, project::set_secret{"", "x"}) == "invalid_argument");
  s = step(s, project::remove_secret{"token"});
  CHECK(s.secrets.empty());
  CHECK(refused(s, project::remove_secret{"token"}) == "not_found");
  CHECK(refused({}, project::set_secret{"k", "v"}) == "not_found");
}

namespace {

const std::string yaml_self_starting =
  "timeout: 5\ntriggers:\n"
  "  - {name: nightly, type: cron, schedule: \"@daily\", runs: [{name: a, host-tag: x, script: s}]}\n"
  "  - name: poll\n    type: git_poller\n    params: {GIT_URL: \"file:///r\", GIT_POLL_REFS: \"refs/heads/*\"}\n"
  "    runs: [{name: a, host-tag: x, script: s}]\n"
  "scripts: {s: \"true\"}\n";

std::vector<build_number_allocated> builds_in(const std::vector<event>& es) {
  std::vector<build_number_allocated> out;
  for (auto& e : es)
    if (auto b = std::get_if<build_number_allocated>(&e))
      out.push_back(*b);
  return out;
}

} // namespace

TEST_CASE("a cron slot makes one build, a first slot none, and an old slot nothing", "[project]") {
  auto s = step({}, project::put_definition{"app", yaml_self_starting});
  auto start = project::decide(s, project::record_cron_slot{"nightly", 86400, false});
  REQUIRE(start);
  CHECK(builds_in(*start).empty());
  s = fold(s, *start);
  auto fired = project::decide(s, project::record_cron_slot{"nightly", 2 * 86400, true});
  REQUIRE(fired);
  REQUIRE(builds_in(*fired).size() == 1);
  CHECK(builds_in(*fired)[0].trigger == "nightly");
  CHECK(builds_in(*fired)[0].reason == "cron: the slot of 1970-01-03T00:00:00Z");
  s = fold(s, *fired);
  // The same slot again (another core, a retry) or an older one: nothing.
  CHECK(project::decide(s, project::record_cron_slot{"nightly", 2 * 86400, true})->empty());
  CHECK(project::decide(s, project::record_cron_slot{"nightly", 86400, true})->empty());
  CHECK(refused(s, project::record_cron_slot{"poll", 3 * 86400, true}) == "unknown_trigger");
}

TEST_CASE("git refs: first sighting records, a moved ref builds once, [skip ci] and new refs only record", "[project]") {
  auto s = step({}, project::put_definition{"app", yaml_self_starting});
  auto first = project::decide(s, project::record_git_refs{"poll", "file:///r", {{"refs/heads/main", "a1"}}, {}});
  REQUIRE(first);
  CHECK(builds_in(*first).empty());
  s = fold(s, *first);
  CHECK(s.git_refs["poll"]["file:///r"]["refs/heads/main"] == "a1");

  project::record_git_refs moved{"poll", "file:///r", {{"refs/heads/main", "b2"}, {"refs/heads/new", "c3"}}, {}};
  auto built = project::decide(s, moved);
  REQUIRE(built);
  auto b = builds_in(*built);
  REQUIRE(b.size() == 1);  // the new branch is only recorded
  CHECK(b[0].params.at("GIT_SHA") == "b2");
  CHECK(b[0].params.at("GIT_OLD_SHA") == "a1");
  CHECK(b[0].params.at("GIT_REF") == "refs/heads/main");
  CHECK(b[0].params.at("GIT_URL") == "file:///r");
  CHECK(b[0].sha == "b2");
  s = fold(s, *built);
  // The same poll again (a second core): no events at all.
  CHECK(project::decide(s, moved)->empty());

  auto skip = project::decide(s, project::record_git_refs{"poll", "file:///r",
                                                          {{"refs/heads/main", "d4"}, {"refs/heads/new", "c3"}},
                                                          {"refs/heads/main"}});
  REQUIRE(skip);
  CHECK(builds_in(*skip).empty());
  s = fold(s, *skip);
  CHECK(s.git_refs["poll"]["file:///r"]["refs/heads/main"] == "d4");
  CHECK(refused(s, project::record_git_refs{"nightly", "file:///r", {}, {}}) == "unknown_trigger");
}
