// The bus's conformance suite: every case runs against the in-process bus
// and against the NATS one on a real nats-server.
#include "events/in_process_bus.hpp"
#include "events/nats_bus.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

// One implementation of the bus, by name (a Catch2 generator picks each).
struct bus_under_test {
  std::unique_ptr<nats_server> server;
  std::unique_ptr<bus::bus> b;
  explicit bus_under_test(const std::string& kind) {
    if (kind == "in-process") {
      b = std::make_unique<bus::in_process_bus>();
      return;
    }
    server = std::make_unique<nats_server>();
    auto connected = bus::nats_bus::connect({{server->url()}});
    INFO((connected ? "" : connected.error().message));
    REQUIRE(connected);
    b = std::move(*connected);
  }
  bus::bus& operator*() { return *b; }
};

} // namespace

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
  auto kind = GENERATE(as<std::string>{}, "in-process", "nats");
  INFO(kind);
  bus_under_test under{kind};
  auto& b = *under;
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
  auto kind = GENERATE(as<std::string>{}, "in-process", "nats");
  INFO(kind);
  bus_under_test under{kind};
  auto& b = *under;
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
  auto kind = GENERATE(as<std::string>{}, "in-process", "nats");
  INFO(kind);
  bus_under_test under{kind};
  auto& b = *under;
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

TEST_CASE("nats bus: reconnects when its server comes back, and a dead one is an error at connect") {
  nats_server server;
  auto connected = bus::nats_bus::connect({{server.url()}, "test", 2000ms, 100ms});
  REQUIRE(connected);
  auto& b = **connected;
  std::atomic<int> got{0};
  auto s = b.subscribe("kiln.evt.>", [&](const bus::message&) { ++got; });
  REQUIRE(b.publish("kiln.evt.a", "1"));
  REQUIRE(wait_until([&] { return got == 1; }));

  server.kill();
  server.start_again();
  // Resubscribed after the reconnect: a publish gets through again.
  REQUIRE(wait_until([&] {
    b.publish("kiln.evt.b", "2");
    return got >= 2;
  }, 30s));

  auto none = bus::nats_bus::connect({{"nats://127.0.0.1:9"}, "test", 500ms});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == "unavailable");
}
