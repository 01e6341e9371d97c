// The projections' snapshot: what decodes is what was folded.
#include "model_fixture.hpp"

#include "actors/build_json.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;

TEST_CASE("read model: a snapshot decodes to the model it was made from") {
  model_builder m;
  m.project("p", simple_yaml);
  m.add(streams::project("p"), {project_secret_set{"k", "sealed"}});
  m.build("p", 1, {"a", "b", "c"}, "linux", 3);
  m.worker("w1", {"linux", "big"}, 2);
  m.assign("p", 1, "a", "w1");
  m.add(streams::run("p", 1, "a"), {run_started{"w1"}});
  m.assign("p", 1, "b", "w1");
  m.add(streams::run("p", 1, "b"), {run_started{"w1"}, run_completed{status::passed, 0, ""}});
  m.add(streams::build("p", 1), {build_runs_added{"ci", "b", {"d"}}});
  m.build("p", 2, {"a"});
  m.add(streams::build("p", 2), {build_completed{status::failed}});
  build_number_allocated pending;
  pending.number = 3;
  pending.trigger = "ci";
  pending.params = {{"K", "V"}};
  m.add(streams::project("p"), {pending});

  auto bytes = m.model.encode();
  auto back = read_model::decode(bytes);
  REQUIRE(back);
  CHECK(back->encode() == bytes);
  CHECK(back->seq() == m.model.seq());
  CHECK(back->queue() == m.model.queue());
  CHECK(back->open_builds() == m.model.open_builds());
  REQUIRE(back->worker("w1"));
  CHECK(back->worker("w1")->holds == m.model.worker("w1")->holds);
  CHECK(back->worker("w1")->holds.size() == 1);
  auto p = back->project("p");
  REQUIRE(p);
  REQUIRE(p->definition);
  CHECK(p->secret_keys == std::set<std::string>{"k"});
  CHECK(p->allocated.at(3).params == param_map{{"K", "V"}});
  auto b1 = back->build("p", 1);
  REQUIRE(b1);
  CHECK(b1->facts.priority == 3);
  CHECK(b1->added.size() == 1);
  CHECK(b1->run("a")->status == status::running);
  CHECK(b1->run("b")->status == status::passed);

  // It goes on from there like the original.
  m.add(streams::run("p", 1, "c"), {run_assigned{"w1", 1}});
  logged_commit next;
  next.seq = global_seq{m.seq};
  next.body.stream = streams::run("p", 1, "c");
  next.body.events = {run_assigned{"w1", 1}};
  back->apply(next);
  CHECK(back->encode() == m.model.encode());
  CHECK(back->queue() == m.model.queue());

  CHECK_FALSE(read_model::decode(bytes.substr(0, bytes.size() / 2)));
  CHECK_FALSE(read_model::decode("KRM0"));
  CHECK_FALSE(read_model::decode(""));
}

TEST_CASE("read model: a run its build names reads as QUEUED before its RunQueued is in") {
  model_builder m;
  m.project("p", simple_yaml);
  build_number_allocated a;
  a.number = 1;
  a.trigger = "ci";
  m.add(streams::project("p"), {a});
  build_created b;
  b.project = "p";
  b.number = 1;
  b.trigger = "ci";
  b.runs = {"a", "b"};
  m.add(streams::build("p", 1), {b});
  m.add(streams::run("p", 1, "a"), {run_queued{"p", 1, "a", "linux", "{}", 1, 60}});

  // "b" is named by the build (the trigger's answer listed it), not queued.
  CHECK_FALSE(m.model.run({"p", 1, "b"}));
  auto pending = m.model.readable_run({"p", 1, "b"});
  REQUIRE(pending);
  CHECK(pending->name == "b");
  CHECK(pending->status == status::queued);
  CHECK(pending->worker.empty());
  CHECK(pending->queued_ns == m.model.build("p", 1)->created_ns);
  // A queued run is read as it is; a name the build lacks is no run.
  auto queued = m.model.readable_run({"p", 1, "a"});
  REQUIRE(queued);
  CHECK(queued->host_tag == "linux");
  CHECK_FALSE(m.model.readable_run({"p", 1, "zz"}));
  CHECK_FALSE(m.model.readable_run({"p", 2, "b"}));

  // The build lists both, in its order: a build read right after the
  // trigger's answer names every run that answer named.
  auto listed = kiln::core::build_json(*m.model.build("p", 1));
  REQUIRE(listed["runs"].size() == 2);
  CHECK(listed["runs"][0]["name"] == "a");
  CHECK(listed["runs"][0]["host_tag"] == "linux");
  CHECK(listed["runs"][1]["name"] == "b");
  CHECK(listed["runs"][1]["status"] == "QUEUED");

  // Once the build ended without it, it will never be queued.
  m.add(streams::build("p", 1), {build_completed{status::failed}});
  CHECK_FALSE(m.model.readable_run({"p", 1, "b"}));
  CHECK(kiln::core::build_json(*m.model.build("p", 1))["runs"].size() == 1);
}
