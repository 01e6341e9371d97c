#pragma once
// A thread that calls `tick` now and then every `interval` until it is
// destroyed (which waits for a tick under way): what the core's helpers
// that must block (git, HTTP, SMTP, object storage) run on.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace kiln::core {

class periodic {
 public:
  periodic(std::chrono::milliseconds interval, std::function<void()> tick)
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

 private:
  void loop() {
    std::unique_lock lock{mu_};
    while (!stopping_) {
      lock.unlock();
      tick_();
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  }

  std::chrono::milliseconds interval_;
  std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

} // namespace kiln::core
