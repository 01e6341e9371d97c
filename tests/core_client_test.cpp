// The gateway's way to the cores on a real (in-process) bus: a request no
// core takes is sent again until one does (all cores restarting); one that
// no core answered in time is sent again only where that is safe (a query,
// a command with a command id).
#include "events/in_process_bus.hpp"
#include "events/subjects.hpp"
#include "gateway/core_client.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <optional>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

struct outcome {
  std::mutex mu;
  std::optional<result<gateway::core_answer>> got;
  gateway::core_callback callback() {
    return [this](result<gateway::core_answer> r) {
      std::lock_guard lock{mu};
      got = std::move(r);
    };
  }
  bool arrived() {
    std::lock_guard lock{mu};
    return got.has_value();
  }
  result<gateway::core_answer> value() {
    std::lock_guard lock{mu};
    return *got;
  }
};

// A core that answers every request but the first `swallow` it receives.
struct counting_core {
  bus::bus& b;
  std::atomic<int> seen{0};
  int swallow;
  std::unique_ptr<bus::subscription> sub;
  counting_core(bus::bus& bus, const std::string& subject, int swallowed = 0)
    : b(bus), swallow(swallowed) {
    sub = b.subscribe(subject, [this](const bus::message& m) {
      if (++seen <= swallow)
        return;  // taken, never answered: a core that died holding it
      b.publish(m.reply_to, subjects::frame(R"({"ok":true,"seq":7})", R"({"answer":42})"));
    });
  }
};

} // namespace

TEST_CASE("a request no core takes is sent again until a core is there", "[gateway][bus]") {
  bus::in_process_bus b;
  gateway::core_client client{b, 10s};
  outcome out;
  client.command("trigger_build", {{"project", "app"}}, {}, out.callback());
  // No core yet: the first tries find no responders. One comes up.
  auto until = std::chrono::steady_clock::now() + 300ms;
  wait_until([&] { return std::chrono::steady_clock::now() >= until; });
  CHECK_FALSE(out.arrived());
  counting_core core{b, "kiln.cmd.trigger_build"};
  REQUIRE(wait_until([&] { return out.arrived(); }, 10s));
  auto r = out.value();
  REQUIRE(r);
  CHECK(r->seq == 7);
  CHECK(r->result().value("answer", 0) == 42);
}

TEST_CASE("with no core at all a request fails 'unavailable' once its time is up, not before",
          "[gateway][bus]") {
  bus::in_process_bus b;
  gateway::core_client client{b, 400ms};
  outcome out;
  auto t0 = std::chrono::steady_clock::now();
  client.query("get_build", {}, {}, out.callback());
  REQUIRE(wait_until([&] { return out.arrived(); }, 10s));
  // A lower bound only: the tries go on until the request's time is up.
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  auto r = out.value();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "unavailable");
}

TEST_CASE("a request no core answered in time is sent again only when that is safe",
          "[gateway][bus]") {
  bus::in_process_bus b;
  gateway::core_client client{b, 2s};

  SECTION("a query") {
    counting_core core{b, "kiln.qry.get_build", 1};
    outcome out;
    client.query("get_build", {}, {}, out.callback());
    REQUIRE(wait_until([&] { return out.arrived(); }, 10s));
    REQUIRE(out.value());
    CHECK(core.seen == 2);
  }
  SECTION("a command with a command id") {
    counting_core core{b, "kiln.cmd.trigger_build", 1};
    outcome out;
    gateway::caller who;
    who.command_id = "retry-me";
    client.command("trigger_build", {}, who, out.callback());
    REQUIRE(wait_until([&] { return out.arrived(); }, 10s));
    REQUIRE(out.value());
    CHECK(core.seen == 2);
  }
  SECTION("not a command without one: it may have been done") {
    counting_core core{b, "kiln.cmd.trigger_build", 1};
    outcome out;
    client.command("trigger_build", {}, {}, out.callback());
    REQUIRE(wait_until([&] { return out.arrived(); }, 10s));
    auto r = out.value();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "unavailable");
    CHECK(core.seen == 1);
  }
}
