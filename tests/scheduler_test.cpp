// The scheduler, pure: a plan from a hand-made model.
#include "actors/scheduler.hpp"
#include "model_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;

namespace {

std::map<std::string, int> per_project(const std::vector<assignment>& plan) {
  std::map<std::string, int> out;
  for (auto& a : plan)
    ++out[a.run.project];
  return out;
}

std::vector<std::string> run_names(const std::vector<assignment>& plan) {
  std::vector<std::string> out;
  for (auto& a : plan)
    out.push_back(a.run.project + "/" + std::to_string(a.run.build) + "/" + a.run.name);
  return out;
}

} // namespace

TEST_CASE("scheduler: never beyond a worker's concurrency, and only to matching workers") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a", "b", "c", "d"});
  m.build("p", 2, {"arm"}, "aarch64");
  m.worker("w1", {"linux"}, 2);
  m.worker("w2", {"LINUX-big"}, 1);   // glob below matches it
  m.worker("w3", {"linux"}, 5, false);  // offline
  std::string last;
  in_flight_assignments none;
  auto plan = schedule(m.model, none, last);
  std::map<std::string, int> per_worker;
  for (auto& a : plan)
    ++per_worker[a.worker];
  CHECK(per_worker["w1"] == 2);
  CHECK(per_worker["w2"] == 0);  // tag "linux" does not match "LINUX-big"
  CHECK(per_worker.count("w3") == 0);
  CHECK(plan.size() == 2);

  // In-flight assignments count against concurrency.
  in_flight_assignments busy;
  busy.add({{"p", 1, "a"}, "w1"});
  busy.add({{"p", 1, "b"}, "w1"});
  CHECK(schedule(m.model, busy, last).empty());
}

TEST_CASE("scheduler: host tags are case-insensitive globs over tags and the worker's name") {
  worker_summary w{"lab-3", {"amd64", "Docker"}, 1};
  CHECK(host_tag_matches("AMD64", w));
  CHECK(host_tag_matches("dock*", w));
  CHECK(host_tag_matches("lab-?", w));
  CHECK(host_tag_matches("*", w));
  CHECK_FALSE(host_tag_matches("arm*", w));
  CHECK_FALSE(host_tag_matches("lab", w));
}

TEST_CASE("scheduler: FIFO within a project") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a", "b"});
  m.build("p", 2, {"a"});
  m.worker("w1", {"linux"}, 1);
  std::string last;
  auto plan = schedule(m.model, {}, last);
  CHECK(run_names(plan) == std::vector<std::string>{"p/1/a"});
}

TEST_CASE("scheduler: a project with 500 queued runs does not starve one with 1") {
  model_builder m;
  m.project("big", simple_yaml);
  m.project("small", simple_yaml);
  std::vector<std::string> many;
  for (int i = 0; i < 500; ++i)
    many.push_back("r" + std::to_string(i));
  m.build("big", 1, many);
  m.build("small", 1, {"only"});
  m.worker("w1", {"linux"}, 2);
  std::string last;
  auto plan = schedule(m.model, {}, last);
  CHECK(per_project(plan) == std::map<std::string, int>{{"big", 1}, {"small", 1}});

  // One slot at a time: the projects take turns.
  model_builder m2;
  m2.project("big", simple_yaml);
  m2.project("small", simple_yaml);
  m2.build("big", 1, many);
  m2.build("small", 1, {"s1", "s2"});
  m2.worker("w1", {"linux"}, 1);
  std::string cursor;
  std::vector<std::string> served;
  for (int turn = 0; turn < 4; ++turn) {
    auto one = schedule(m2.model, {}, cursor);
    REQUIRE(one.size() == 1);
    served.push_back(one[0].run.project);
    m2.assign(one[0].run.project, 1, one[0].run.name, "w1");
    m2.add(streams::run(one[0].run.project, 1, one[0].run.name),
           {run_completed{status::passed, 0, ""}});
  }
  CHECK(served == std::vector<std::string>{"big", "small", "big", "small"});
}

TEST_CASE("scheduler: higher build priority goes first") {
  model_builder m;
  m.project("p", simple_yaml);
  m.project("q", simple_yaml);
  m.build("p", 1, {"low"}, "linux", 0);
  m.build("q", 1, {"high"}, "linux", 10);
  m.worker("w1", {"linux"}, 1);
  std::string last;
  auto plan = schedule(m.model, {}, last);
  CHECK(run_names(plan) == std::vector<std::string>{"q/1/high"});
}

TEST_CASE("scheduler: synchronous-builds makes a newer build wait for the older one") {
  model_builder m;
  m.project("p", std::string{simple_yaml} + "synchronous-builds: true\n");
  REQUIRE(m.model.project("p")->synchronous());
  m.build("p", 1, {"a"});
  m.build("p", 2, {"a"});
  m.worker("w1", {"linux"}, 4);
  std::string last;
  auto plan = schedule(m.model, {}, last);
  CHECK(run_names(plan) == std::vector<std::string>{"p/1/a"});
  auto waiting = explain_queue(m.model, {});
  REQUIRE(waiting.size() == 2);
  CHECK(waiting[1].reason == wait_reason::synchronous_build);

  m.add(streams::build("p", 1), {build_completed{status::passed}});
  plan = schedule(m.model, {}, last);
  CHECK(run_names(plan) == std::vector<std::string>{"p/1/a", "p/2/a"});
}

TEST_CASE("scheduler: the queue says why each run waits") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a", "b"});
  m.build("p", 2, {"c"}, "arm");
  m.worker("w1", {"linux"}, 1);
  m.assign("p", 1, "a", "w1");
  auto waiting = explain_queue(m.model, {});
  REQUIRE(waiting.size() == 2);
  CHECK(waiting[0].run.name == "b");
  CHECK(waiting[0].reason == wait_reason::workers_busy);
  CHECK(waiting[1].run.name == "c");
  CHECK(waiting[1].reason == wait_reason::no_worker);
}

TEST_CASE("scheduler: a paused worker (draining, low on disk) gets nothing new") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a", "b"});
  m.worker("w1", {"linux"}, 2);
  m.worker("w2", {"linux"}, 2);
  std::string last;
  auto plan = schedule(m.model, {}, last, {"w1"});
  REQUIRE(plan.size() == 2);
  for (auto& a : plan)
    CHECK(a.worker == "w2");
  CHECK(schedule(m.model, {}, last, {"w1", "w2"}).empty());
}

TEST_CASE("scheduler: runs being queued now are planned after the queue, by the same rules") {
  model_builder m;
  m.project("p", simple_yaml);
  m.project("q", simple_yaml);
  m.build("p", 1, {"old"});
  m.build("p", 2, {});
  m.build("q", 1, {}, "linux", 10);
  m.worker("w1", {"linux"}, 2);
  std::string last;
  // A free slot each: the queued run and the incoming one both go.
  std::vector<incoming_run> incoming{{{"p", 2, "new"}, "linux", 0}};
  auto plan = schedule(m.model, {}, last, {}, incoming);
  CHECK(run_names(plan) == std::vector<std::string>{"p/1/old", "p/2/new"});

  // One slot: the queue's run first (FIFO within a project)...
  m.assign("p", 1, "old", "w1");
  plan = schedule(m.model, {}, last, {}, {{{"p", 2, "new"}, "linux", 0}, {{"p", 2, "next"}, "linux", 0}});
  CHECK(run_names(plan) == std::vector<std::string>{"p/2/new"});
  // ...and a higher priority before either.
  m.add(streams::run("p", 1, "old"), {run_completed{status::passed, 0, ""}});
  m.build("p", 3, {"queued"});
  m.assign("p", 3, "queued", "w1");
  m.build("p", 4, {"waiting"});
  plan = schedule(m.model, {}, last, {}, {{{"q", 1, "urgent"}, "linux", 10}});
  CHECK(run_names(plan) == std::vector<std::string>{"q/1/urgent"});

  // Never to a worker without the tag, nor beyond a worker's concurrency.
  plan = schedule(m.model, {}, last, {}, {{{"p", 2, "arm"}, "aarch64", 0}});
  CHECK(run_names(plan) == std::vector<std::string>{"p/4/waiting"});
  in_flight_assignments busy;
  busy.add({{"p", 4, "waiting"}, "w1"});
  CHECK(schedule(m.model, busy, last, {}, {{{"p", 2, "late"}, "linux", 0}}).empty());
}

TEST_CASE("scheduler: an incoming run of a synchronous project waits for the older build") {
  model_builder m;
  m.project("p", std::string{simple_yaml} + "synchronous-builds: true\n");
  m.worker("w1", {"linux"}, 4);
  m.build("p", 1, {"a"});
  m.assign("p", 1, "a", "w1");
  m.build("p", 2, {});
  std::string last;
  std::vector<incoming_run> incoming{{{"p", 2, "b"}, "linux", 0}};
  CHECK(schedule(m.model, {}, last, {}, incoming).empty());
  m.add(streams::build("p", 1), {build_completed{status::passed}});
  CHECK(run_names(schedule(m.model, {}, last, {}, incoming)) == std::vector<std::string>{"p/2/b"});
}
