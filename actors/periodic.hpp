#pragma once
// A thread that calls `tick` now and then every `interval` until it is
// destroyed (which waits for a tick under way): what the core's helpers
// that must block (git, HTTP, SMTP, object storage) run on. A long tick
// may ask stopping() between its steps to end early.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace kiln::core {

class periodic {
 public:
  using tick_fn = std::function<void(const periodic&)>;
  periodic(std::chrono::milliseconds interval, tick_fn tick)
      : interval_(interval), tick_(std::move(tick)), thread_([this] { loop(); }) {}
  ~periodic() {
    {
      std::lock_guard lock{mu_};
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  periodic(const periodic&) = delete;
  periodic& operator=(const periodic&) = delete;

  bool stopping() const {
    std::lock_guard lock{mu_};
    return stopping_;
  }

 private:
  void loop() {
    std::unique_lock lock{mu_};
    while (!stopping_) {
      lock.unlock();
      tick_(*this);
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  }

  std::chrono::milliseconds interval_;
  tick_fn tick_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

} // namespace kiln::core
