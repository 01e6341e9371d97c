// Two cores deciding on one log, each with its own cron ticks, git poller
// and notifier: what a cluster's cores do over the replicated log (issue
// 6 puts JetStream under them). A cron slot, a push and a notification's
// attempt must each happen once, however the cores race.
#include "actors/core_service.hpp"
#include "actors/git_poller.hpp"
#include "actors/notifier.hpp"
#include "events/in_process_bus.hpp"
#include "core_fixture.hpp"
#include "git_origin.hpp"
#include "support/http_receiver.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <set>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

std::string project_yaml(const std::string& repo, const std::string& hook) {
  return R"(timeout: 5
webhooks:
  - url: )" + hook + R"(/hook
    secret_name: hookkey
triggers:
  - name: tick
    type: cron
    schedule: "* * * * * *"
    runs:
      - name: a
        host-tag: nobody-has-this
        script: s
  - name: poll
    type: git_poller
    poll-interval: 1
    params:
      GIT_URL: )" + repo + R"(
    runs:
      - name: a
        host-tag: nobody-has-this
        script: s
scripts:
  s: echo
)";
}

std::vector<domain::build_summary> builds(core::core& c) {
  auto out = c.read(core::list_builds{"p", 1000, 0});
  REQUIRE(out);
  return std::get<std::vector<domain::build_summary>>(*out);
}

} // namespace

TEST_CASE("two cores on one log fire a cron slot once, build a push once, send a notification once",
          "[core][cluster]") {
  git_origin origin;
  origin.push("first");
  http_receiver hooks{200};
  core_fixture f;
  core::core second{*f.log, *f.box, f.config};
  REQUIRE(second.start());
  auto repo = "file://" + origin.bare.string();
  f.call<core::receipt>(core::put_project{"p", project_yaml(repo, hooks.url())});
  f.call<core::receipt>(core::set_secret{"p", "hookkey", "k"});

  std::vector<std::unique_ptr<core::git_poller>> pollers;
  std::vector<std::unique_ptr<core::notifier>> notifiers;
  for (auto* c : {f.node.get(), &second}) {
    pollers.push_back(std::make_unique<core::git_poller>(
      *c, core::git_poller_options{f.dir.path() / ("cache-" + std::to_string(pollers.size()))}));
    core::notifier_options o;
    o.tick = 50ms;
    o.settings.public_url = "http://kiln.test";
    notifiers.push_back(std::make_unique<core::notifier>(*c, o));
  }

  // Slots go by; both cores see each one.
  REQUIRE(wait_until([&] {
    int ticks = 0;
    for (auto& b : builds(second))
      ticks += b.facts.trigger == "tick";
    return ticks >= 4;
  }, 60s));
  // Both pollers have the repository's refs; a push makes one build.
  auto sha = origin.push("second");
  REQUIRE(wait_until([&] {
    for (auto& b : builds(*f.node))
      if (b.facts.trigger == "poll" && b.facts.sha == sha)
        return true;
    return false;
  }, 60s));
  // A few more poll intervals, in which a second build would be made.
  auto until = std::chrono::steady_clock::now() + 4s;
  wait_until([&] { return std::chrono::steady_clock::now() >= until; }, 10s);

  auto all = builds(second);
  std::map<std::string, int> per_slot;
  int pushes = 0;
  for (auto& b : all) {
    if (b.facts.trigger == "tick")
      ++per_slot[b.facts.reason];
    else if (b.facts.sha == sha)
      ++pushes;
  }
  CHECK(pushes == 1);
  for (auto& [slot, count] : per_slot) {
    INFO(slot);
    CHECK(count == 1);
  }

  // Each build, cancelled, tells its webhook once, whichever notifier claims it.
  pollers.clear();
  std::set<std::uint32_t> cancelled;
  for (auto& b : all)
    if (second.call(core::cancel_build{"p", b.number}))
      cancelled.insert(b.number);
  REQUIRE(!cancelled.empty());
  REQUIRE(wait_until([&] {
    for (auto n : cancelled) {
      auto b = f.build("p", n);
      auto it = b.notifications.find("webhook/0");
      if (!b.completed || it == b.notifications.end() || !it->second.settled())
        return false;
    }
    return true;
  }, 60s));
  std::map<std::string, int> deliveries;
  for (auto& r : hooks.requests())
    ++deliveries[r.headers.at("x-kiln-delivery")];
  for (auto n : cancelled) {
    auto id = "p/" + std::to_string(n) + "/webhook/0";
    INFO(id);
    CHECK(deliveries[id] == 1);
    CHECK(f.build("p", n).notifications.at("webhook/0").state.attempts == 1);
  }
  notifiers.clear();
  second.stop();
}

// Check-ins go to any core of a cluster (a queue group), but only the
// leading core runs the watchdog and the scheduler: the others pass them on.
TEST_CASE("a worker checking in at a core that does not lead stays online at the one that does",
          "[core][cluster]") {
  core::core_config config;
  config.watchdog.worker_timeout = 2s;
  config.watchdog_interval = 100ms;
  core_fixture f{{config}};  // leads
  auto follower_config = config;
  follower_config.leading = false;
  core::core follower{*f.log, *f.box, follower_config};
  REQUIRE(follower.start());
  bus::in_process_bus b;
  core::core_service leader_service{b, *f.node, *f.log, true};
  core::core_service follower_service{b, follower, *f.log, false};

  auto token = f.add_worker("w1", {"linux"});
  auto online_at_leader = [&] {
    auto workers = f.read<std::vector<core::worker_info>>(core::list_workers{});
    return workers.size() == 1 && workers[0].summary.online;
  };
  // Once the follower has the worker's enlisting.
  REQUIRE(wait_until([&] { return bool(follower.call(core::worker_checkin{"w1", token})); }));
  REQUIRE(wait_until(online_at_leader));

  // Only ever at the follower, for more than twice the timeout.
  auto until = std::chrono::steady_clock::now() + 5s;
  bool stayed_online = true;
  wait_until([&] {
    REQUIRE(follower.call(core::worker_checkin{"w1", token}));
    stayed_online = stayed_online && online_at_leader();
    return std::chrono::steady_clock::now() >= until;
  }, 20s);
  CHECK(stayed_online);
  // Silent, it is let go.
  CHECK(wait_until([&] { return !online_at_leader(); }));
}
