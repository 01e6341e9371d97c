#include "gateway/live_hub.hpp"

#include "events/subjects.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace kiln::gateway {

live_hub::live_hub(bus::bus& b, std::chrono::milliseconds tick) {
  event_sub_ = b.subscribe("kiln.evt.>", [this](const bus::message& m) { deliver_event(m); });
  chunk_sub_ = b.subscribe("kiln.log.>", [this](const bus::message& m) { deliver_chunk(m); });
  ticker_ = std::thread([this, tick] {
    std::unique_lock lock{stop_mu_};
    while (!stop_cv_.wait_for(lock, tick, [this] { return stopping_; })) {
      lock.unlock();
      std::lock_guard guard{mu_};
      auto copy = ticks_;
      for (auto& [id, f] : copy)
        if (ticks_.count(id))
          (*f)();
      lock.lock();
    }
  });
}

live_hub::~live_hub() {
  event_sub_.reset();
  chunk_sub_.reset();
  {
    std::lock_guard lock{stop_mu_};
    stopping_ = true;
  }
  stop_cv_.notify_all();
  ticker_.join();
}

std::uint64_t live_hub::on_event(event_listener f) {
  std::lock_guard lock{mu_};
  auto id = next_++;
  events_[id] = std::make_shared<event_listener>(std::move(f));
  return id;
}

std::uint64_t live_hub::on_console(const std::string& run, chunk_listener f) {
  std::lock_guard lock{mu_};
  auto id = next_++;
  chunks_.emplace(run, std::make_pair(id, std::make_shared<chunk_listener>(std::move(f))));
  chunk_keys_[id] = run;
  return id;
}

std::uint64_t live_hub::on_tick(tick_listener f) {
  std::lock_guard lock{mu_};
  auto id = next_++;
  ticks_[id] = std::make_shared<tick_listener>(std::move(f));
  return id;
}

void live_hub::remove(std::uint64_t id) {
  std::lock_guard lock{mu_};
  events_.erase(id);
  ticks_.erase(id);
  if (auto it = chunk_keys_.find(id); it != chunk_keys_.end()) {
    auto [b, e] = chunks_.equal_range(it->second);
    for (auto x = b; x != e; ++x)
      if (x->second.first == id) {
        chunks_.erase(x);
        break;
      }
    chunk_keys_.erase(it);
  }
}

void live_hub::deliver_event(const bus::message& m) {
  constexpr std::string_view prefix = "kiln.evt.";
  std::string_view path = m.subject;
  path.remove_prefix(std::min(path.size(), prefix.size()));
  auto commit = nlohmann::json::parse(m.data, nullptr, false);
  auto seq = commit.is_object() ? commit.value("seq", std::uint64_t{0}) : 0;
  std::lock_guard lock{mu_};
  // A copy: a listener may remove itself (or others) while called.
  auto copy = events_;
  for (auto& [id, f] : copy)
    if (events_.count(id))
      (*f)(path, seq);
}

void live_hub::deliver_chunk(const bus::message& m) {
  auto [head, bytes] = subjects::unframe(m.data);
  auto j = nlohmann::json::parse(head, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return;
  auto run = j.value("run", std::string{});
  auto offset = j.value("offset", std::uint64_t{0});
  std::lock_guard lock{mu_};
  std::vector<std::pair<std::uint64_t, std::shared_ptr<chunk_listener>>> copy;
  auto [b, e] = chunks_.equal_range(run);
  for (auto x = b; x != e; ++x)
    copy.push_back(x->second);
  for (auto& [id, f] : copy)
    if (chunk_keys_.count(id))
      (*f)(offset, bytes);
}

} // namespace kiln::gateway
