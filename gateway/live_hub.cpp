#include "gateway/live_hub.hpp"

#include "events/subjects.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace kiln::gateway {

namespace {

// The commit's own "seq" without parsing the line: a commit's keys come
// sorted (its events before "seq"; "stream" and "time" after it hold only
// strings, where a quote is escaped), so it is the last such key.
std::uint64_t commit_seq(std::string_view line) {
  constexpr std::string_view key = "\"seq\":";
  auto at = line.rfind(key);
  if (at == std::string_view::npos)
    return 0;
  std::uint64_t seq = 0;
  for (auto i = at + key.size(); i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
    seq = seq * 10 + static_cast<std::uint64_t>(line[i] - '0');
  return seq;
}

} // namespace

const nlohmann::json* event_data(const nlohmann::json& commit, std::string_view type) {
  if (!commit.is_object() || !commit.contains("events") || !commit["events"].is_array())
    return nullptr;
  for (auto& e : commit["events"])
    if (e.is_object() && e.value("type", "") == type && e.contains("data") && e["data"].is_object())
      return &e["data"];
  return nullptr;
}

live_hub::live_hub(bus::bus& b, std::chrono::milliseconds tick) : bus_(b) {
  chunk_sub_ = b.subscribe("kiln.log.>", [this](const bus::message& m) { deliver_chunk(m); });
  ticker_ = std::thread([this, tick] {
    std::unique_lock lock{stop_mu_};
    while (!stop_cv_.wait_for(lock, tick, [this] { return stopping_; })) {
      lock.unlock();
      {
        std::lock_guard guard{mu_};
        auto copy = ticks_;
        for (auto& [id, f] : copy)
          if (ticks_.count(id))
            (*f)();
      }
      drop_unwanted();
      lock.lock();
    }
  });
}

live_hub::~live_hub() {
  {
    std::map<std::string, std::unique_ptr<bus::subscription>> subs;
    {
      std::lock_guard lock{mu_};
      subs.swap(event_subs_);
    }
  }
  chunk_sub_.reset();
  {
    std::lock_guard lock{stop_mu_};
    stopping_ = true;
  }
  stop_cv_.notify_all();
  ticker_.join();
}

std::unique_ptr<bus::subscription> live_hub::subscribe_events(const std::string& kind) {
  auto pattern = kind.empty() ? std::string{"kiln.evt.>"} : "kiln.evt.*.*.*." + kind;
  return bus_.subscribe(pattern, [this, kind](const bus::message& m) { deliver_event(kind, m); });
}

std::uint64_t live_hub::on_event(event_listener f) { return on_events({""}, std::move(f)); }

std::uint64_t live_hub::on_events(const std::vector<std::string>& types, event_listener f) {
  std::uint64_t id;
  {
    std::lock_guard lock{mu_};
    id = next_++;
    auto shared = std::make_shared<event_listener>(std::move(f));
    for (auto& kind : types)
      events_[kind][id] = shared;
    event_kinds_[id] = types;
  }
  // Once the listener is in, the ticker keeps its subscriptions; made
  // outside the lock (a delivery takes it) and before the call returns, so
  // that an event published after the call reaches the listener.
  for (auto& kind : types) {
    {
      std::lock_guard lock{mu_};
      if (event_subs_.count(kind))
        continue;
    }
    auto sub = subscribe_events(kind);
    std::unique_ptr<bus::subscription> extra;  // another call made it first
    {
      std::lock_guard lock{mu_};
      auto& slot = event_subs_[kind];
      (slot ? extra : slot) = std::move(sub);
    }
  }
  return id;
}

void live_hub::drop_unwanted() {
  std::unique_ptr<bus::subscription> unwanted;
  {
    std::lock_guard lock{mu_};
    auto it = events_.find("");
    if (it != events_.end() && !it->second.empty())
      return;
    if (auto sub = event_subs_.find(""); sub != event_subs_.end()) {
      unwanted = std::move(sub->second);
      event_subs_.erase(sub);
    }
  }
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
  if (auto it = event_kinds_.find(id); it != event_kinds_.end()) {
    for (auto& kind : it->second)
      events_[kind].erase(id);
    event_kinds_.erase(it);
  }
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

void live_hub::deliver_event(const std::string& kind, const bus::message& m) {
  constexpr std::string_view prefix = "kiln.evt.";
  std::string_view path = m.subject;
  path.remove_prefix(std::min(path.size(), prefix.size()));
  auto seq = commit_seq(m.data);
  raise_to(last_seq_, seq);
  {
    std::lock_guard lock{mu_};
    if (events_[kind].empty())
      return;  // the whole commit is parsed only for someone
  }
  auto commit = nlohmann::json::parse(m.data, nullptr, false);
  heard_event heard{path, seq, commit};
  std::lock_guard lock{mu_};
  // A copy: a listener may remove itself (or others) while called.
  auto copy = events_[kind];
  for (auto& [id, f] : copy)
    if (event_kinds_.count(id))
      (*f)(heard);
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
