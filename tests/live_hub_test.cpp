// The gateway's live hub on a real (in-process) bus: a listener hears the
// kinds of event it names and no other, each event once; one that wants
// every event hears them all, and once it goes (the hub then drops that
// subscription) a new one hears them all again.
#include "events/in_process_bus.hpp"
#include "gateway/live_hub.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

using namespace kiln;
using kiln::gateway::heard_event;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

struct heard {
  std::mutex mu;
  std::vector<std::string> paths;
  void add(std::string_view p) {
    std::lock_guard lock{mu};
    paths.emplace_back(p);
  }
  std::vector<std::string> get() {
    std::lock_guard lock{mu};
    return paths;
  }
  bool has(const std::string& p) {
    std::lock_guard lock{mu};
    return std::count(paths.begin(), paths.end(), p) > 0;
  }
};

std::string commit(std::uint64_t seq) { return R"({"seq":)" + std::to_string(seq) + "}"; }

} // namespace

TEST_CASE("live hub: a listener hears the kinds of event it names, one for every event hears all",
          "[gateway]") {
  bus::in_process_bus b;
  gateway::live_hub hub{b, 20ms};
  heard assigned, all;
  std::vector<std::uint64_t> seqs;
  auto narrow = hub.on_events({"RunAssigned", "RunCancelRequested"},
                              [&](const heard_event& e) {
                                seqs.push_back(e.seq);  // before add(): its lock publishes it
                                assigned.add(e.path);
                              });
  auto wide = hub.on_event([&](const heard_event& e) { all.add(e.path); });

  b.publish("kiln.evt.p.1.r.RunStarted", commit(7));
  b.publish("kiln.evt.p.1.r.RunAssigned", commit(8));
  b.publish("kiln.evt.p.1.r.RunCompleted", commit(9));
  REQUIRE(wait_until([&] { return all.get().size() == 3; }));
  REQUIRE(wait_until([&] { return assigned.get().size() == 1; }));
  CHECK(assigned.get() == std::vector<std::string>{"p.1.r.RunAssigned"});
  CHECK(seqs == std::vector<std::uint64_t>{8});
  CHECK(all.get() == std::vector<std::string>{"p.1.r.RunStarted", "p.1.r.RunAssigned",
                                              "p.1.r.RunCompleted"});
  // The newest commit heard; a key "seq" in an event's data is not the commit's.
  CHECK(hub.last_seq() == 9);
  b.publish("kiln.evt.p.1.r.RunStarted",
            R"({"events":[{"data":{"seq":99},"type":"RunStarted"}],"hash":"x","seq":11,"stream":"run/p/1/r"})");
  REQUIRE(wait_until([&] { return all.get().size() == 4; }));
  CHECK(hub.last_seq() == 11);

  // Gone, it hears nothing more; a later listener for every event hears it.
  hub.remove(wide);
  hub.remove(narrow);
  // A few ticks: the hub drops the subscription nobody wants.
  auto until = std::chrono::steady_clock::now() + 100ms;
  wait_until([&] { return std::chrono::steady_clock::now() >= until; });
  heard later;
  auto again = hub.on_event([&](const heard_event& e) { later.add(e.path); });
  b.publish("kiln.evt.p.2.r.RunQueued", commit(10));
  REQUIRE(wait_until([&] { return later.has("p.2.r.RunQueued"); }));
  CHECK(all.get().size() == 4);
  CHECK(assigned.get().size() == 1);
  hub.remove(again);
}
