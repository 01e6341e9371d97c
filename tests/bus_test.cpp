// The in-process bus: NATS core semantics in one process.
#include "events/in_process_bus.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

TEST_CASE("bus: subjects match NATS wildcards") {
  using bus::subject_matches;
  CHECK(subject_matches("kiln.cmd.project", "kiln.cmd.project"));
  CHECK(subject_matches("kiln.*.project", "kiln.cmd.project"));
  CHECK(subject_matches("kiln.>", "kiln.cmd.project"));
  CHECK(subject_matches("kiln.evt.app.>", "kiln.evt.app.3.unit.RunQueued"));
  CHECK_FALSE(subject_matches("kiln.>", "kiln"));
  CHECK_FALSE(subject_matches("kiln.*", "kiln.cmd.project"));
  CHECK_FALSE(subject_matches("kiln.cmd", "kiln.cmd.project"));
  CHECK_FALSE(subject_matches("kiln.cmd.project", "kiln.cmd"));
  CHECK(bus::valid_token("app-1_x"));
  CHECK_FALSE(bus::valid_token("a.b"));
  CHECK_FALSE(bus::valid_token("a*"));
  CHECK_FALSE(bus::valid_token(""));
}

TEST_CASE("bus: subscribers get what matches, in publish order, until they unsubscribe") {
  bus::in_process_bus b;
  std::mutex mu;
  std::vector<std::string> got;
  auto s = b.subscribe("kiln.evt.>", [&](const bus::message& m) {
    std::lock_guard lock{mu};
    got.push_back(m.subject + "=" + m.data);
  });
  for (int i = 0; i < 100; ++i)
    REQUIRE(b.publish("kiln.evt.app." + std::to_string(i), std::to_string(i)));
  REQUIRE(b.publish("kiln.other", "x"));
  REQUIRE(wait_until([&] {
    std::lock_guard lock{mu};
    return got.size() == 100;
  }));
  {
    std::lock_guard lock{mu};
    for (int i = 0; i < 100; ++i)
      CHECK(got[i] == "kiln.evt.app." + std::to_string(i) + "=" + std::to_string(i));
  }
  s.reset();
  std::atomic<int> after{0};
  auto marker = b.subscribe("marker", [&](const bus::message&) { ++after; });
  REQUIRE(b.publish("kiln.evt.app.late", "late"));
  REQUIRE(b.publish("marker", ""));
  REQUIRE(wait_until([&] { return after == 1; }));
  std::lock_guard lock{mu};
  CHECK(got.size() == 100);  // nothing after unsubscribing
}

TEST_CASE("bus: a queue group hands each message to one member") {
  bus::in_process_bus b;
  std::atomic<int> first{0}, second{0}, plain{0};
  auto s1 = b.subscribe("kiln.cmd.>", [&](const bus::message&) { ++first; }, "cores");
  auto s2 = b.subscribe("kiln.cmd.>", [&](const bus::message&) { ++second; }, "cores");
  auto s3 = b.subscribe("kiln.cmd.>", [&](const bus::message&) { ++plain; });
  for (int i = 0; i < 100; ++i)
    REQUIRE(b.publish("kiln.cmd.project", "x"));
  REQUIRE(wait_until([&] { return plain == 100 && first + second == 100; }));
  CHECK(first > 0);
  CHECK(second > 0);
}

TEST_CASE("bus: request and reply, no responders, and timeouts") {
  bus::in_process_bus b;
  auto responder = b.subscribe("kiln.qry.echo", [&](const bus::message& m) {
    b.publish(m.reply_to, "echo:" + m.data);
  }, "cores");
  auto silent = b.subscribe("kiln.qry.silent", [](const bus::message&) {});

  auto ask = [&](std::string subject, std::chrono::milliseconds timeout) {
    std::promise<result<std::string>> p;
    auto f = p.get_future();
    b.request(std::move(subject), "hi", timeout, [&](result<std::string> r) { p.set_value(r); });
    return f.get();
  };
  auto r = ask("kiln.qry.echo", 5s);
  REQUIRE(r);
  CHECK(*r == "echo:hi");
  auto none = ask("kiln.qry.nobody", 5s);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == "no_responders");
  auto late = ask("kiln.qry.silent", 50ms);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == "timeout");
}
