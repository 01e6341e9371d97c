#pragma once
// Who hears of each commit once the core's read model holds it
// (core::on_applied): the projector tells it on the core's thread, right
// after applying the commit. Set and called under one lock: once set to
// nothing, it is called no more.
#include "events/commit.hpp"

#include <functional>
#include <mutex>

namespace kiln::core::detail {

class applied_relay {
 public:
  using listener = std::function<void(const logged_commit&)>;
  void set(listener f) {
    std::lock_guard lock{mu_};
    listener_ = std::move(f);
  }
  void operator()(const logged_commit& c) {
    std::lock_guard lock{mu_};
    if (listener_)
      listener_(c);
  }

 private:
  std::mutex mu_;
  listener listener_;
};

} // namespace kiln::core::detail
