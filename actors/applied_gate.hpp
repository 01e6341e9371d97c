#pragma once
// How far the core's read model has got, for core::wait_applied: the
// projector advances it after each commit; a publisher waits on it.
#include "events/ids.hpp"

#include <condition_variable>
#include <mutex>

namespace kiln::core::detail {

class applied_gate {
 public:
  void open(global_seq seq) {
    std::lock_guard lock{mu_};
    seq_ = seq;
    closed_ = false;
  }
  void advance(global_seq seq) {
    {
      std::lock_guard lock{mu_};
      seq_ = seq;
    }
    cv_.notify_all();
  }
  void close() {
    {
      std::lock_guard lock{mu_};
      closed_ = true;
    }
    cv_.notify_all();
  }
  bool wait(global_seq seq) {
    std::unique_lock lock{mu_};
    cv_.wait(lock, [&] { return closed_ || seq_ >= seq; });
    return seq_ >= seq;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  global_seq seq_;
  bool closed_ = true;  // until the core starts
};

} // namespace kiln::core::detail
