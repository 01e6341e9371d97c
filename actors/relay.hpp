#pragma once
// Where a core's actors hand something to whoever outside listens: set and
// called under one lock, so once set to nothing it is called no more (and no
// call is under way). The listener runs on a core thread and must not block.
#include <functional>
#include <mutex>

namespace kiln::core::detail {

template <class... Args>
class relay {
 public:
  using listener = std::function<void(Args...)>;
  void set(listener f) {
    std::lock_guard lock{mu_};
    listener_ = std::move(f);
  }
  void operator()(Args... args) {
    std::lock_guard lock{mu_};
    if (listener_)
      listener_(args...);
  }

 private:
  std::mutex mu_;
  listener listener_;
};

} // namespace kiln::core::detail
