#pragma once
// One gateway's window on what happens now: a single bus subscription each
// to every event (kiln.evt.>) and every console chunk (kiln.log.>), fanned
// out to the streams and long polls that wait on them, and a ticker for
// their heartbeats and deadlines. Listeners must not block.
#include "events/bus.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace kiln::gateway {

class live_hub {
 public:
  // "<p>.<b>.<r>.<Type>" and the commit's sequence: a read that reacts to
  // the event asks for a core holding it (min_seq), for the core that
  // answers may not have copied it yet.
  using event_listener = std::function<void(std::string_view path, std::uint64_t seq)>;
  using chunk_listener = std::function<void(std::uint64_t offset, std::string_view bytes)>;
  using tick_listener = std::function<void()>;

  live_hub(bus::bus& b, std::chrono::milliseconds tick);
  ~live_hub();

  std::uint64_t on_event(event_listener f);
  // Chunks of one run ("<project>/<build>/<run>").
  std::uint64_t on_console(const std::string& run, chunk_listener f);
  std::uint64_t on_tick(tick_listener f);
  // After remove returns, the listener is not called again.
  void remove(std::uint64_t id);

 private:
  void deliver_event(const bus::message& m);
  void deliver_chunk(const bus::message& m);

  std::recursive_mutex mu_;  // held while calling, so remove() waits for a call in progress
  std::uint64_t next_ = 1;
  std::map<std::uint64_t, std::shared_ptr<event_listener>> events_;
  std::multimap<std::string, std::pair<std::uint64_t, std::shared_ptr<chunk_listener>>> chunks_;
  std::map<std::uint64_t, std::string> chunk_keys_;
  std::map<std::uint64_t, std::shared_ptr<tick_listener>> ticks_;
  std::unique_ptr<bus::subscription> event_sub_;
  std::unique_ptr<bus::subscription> chunk_sub_;
  bool stopping_ = false;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread ticker_;
};

} // namespace kiln::gateway
