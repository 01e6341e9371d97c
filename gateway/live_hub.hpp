#pragma once
// One gateway's window on what happens now: bus subscriptions to the events
// its listeners want and to every console chunk (kiln.log.>), fanned out to
// the streams and long polls that wait on them, and a ticker for their
// heartbeats and deadlines. Listeners must not block.
//
// Long polls and console followers want two or three kinds of event, of the
// seven a run makes: the hub subscribes to each kind a listener names, and
// to every event (kiln.evt.>) only while an event feed is open. Each
// gateway took every event before, and in a cluster that was most of what
// the bus carried to gateways.
#include "events/bus.hpp"

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::gateway {

// Raises `a` to `v` if `v` is higher (from any thread).
inline void raise_to(std::atomic<std::uint64_t>& a, std::uint64_t v) {
  for (auto now = a.load(); v > now && !a.compare_exchange_weak(now, v);) {
  }
}

// An event as the hub heard it. A read that reacts to it asks for a core
// holding its commit (min_seq `seq`): the core that answers may not have
// copied it yet.
struct heard_event {
  std::string_view path;  // "<p>.<b>.<r>.<Type>"
  std::uint64_t seq = 0;  // the commit's sequence
  const nlohmann::json& commit;  // the whole commit
};

// The data of the commit's first event of `type`; none in a commit that
// holds no such event or cannot be read.
const nlohmann::json* event_data(const nlohmann::json& commit, std::string_view type);

class live_hub {
 public:
  using event_listener = std::function<void(const heard_event&)>;
  using chunk_listener = std::function<void(std::uint64_t offset, std::string_view bytes)>;
  using tick_listener = std::function<void()>;

  live_hub(bus::bus& b, std::chrono::milliseconds tick);
  ~live_hub();

  // Every event.
  std::uint64_t on_event(event_listener f);
  // The events of these types ("RunAssigned", ...) only.
  std::uint64_t on_events(const std::vector<std::string>& types, event_listener f);
  // Chunks of one run ("<project>/<build>/<run>").
  std::uint64_t on_console(const std::string& run, chunk_listener f);
  std::uint64_t on_tick(tick_listener f);
  // After remove returns, the listener is not called again.
  void remove(std::uint64_t id);

  // The newest commit among the events heard so far. A read that begins
  // after its listener is in asks for a core holding it: an event heard
  // before the listener was in is then in what the read returns, and a
  // core whose copy lags cannot answer with a state older than it.
  std::uint64_t last_seq() const { return last_seq_.load(); }

 private:
  // `kind`: the type whose subscription brought it, or "" for every event.
  void deliver_event(const std::string& kind, const bus::message& m);
  void deliver_chunk(const bus::message& m);
  std::unique_ptr<bus::subscription> subscribe_events(const std::string& kind);
  // Drops the subscription to every event once nobody wants it. From the
  // ticker: a listener may go from within a delivery of that subscription.
  void drop_unwanted();

  std::recursive_mutex mu_;  // held while calling, so remove() waits for a call in progress
  std::uint64_t next_ = 1;
  bus::bus& bus_;
  // Listeners by the type they want ("" for every event), and the
  // subscription for each.
  std::map<std::string, std::map<std::uint64_t, std::shared_ptr<event_listener>>> events_;
  std::map<std::uint64_t, std::vector<std::string>> event_kinds_;
  std::map<std::string, std::unique_ptr<bus::subscription>> event_subs_;
  std::multimap<std::string, std::pair<std::uint64_t, std::shared_ptr<chunk_listener>>> chunks_;
  std::map<std::uint64_t, std::string> chunk_keys_;
  std::map<std::uint64_t, std::shared_ptr<tick_listener>> ticks_;
  std::unique_ptr<bus::subscription> chunk_sub_;
  std::atomic<std::uint64_t> last_seq_{0};
  bool stopping_ = false;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread ticker_;
};

} // namespace kiln::gateway
