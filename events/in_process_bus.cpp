#include "events/in_process_bus.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace kiln::bus {

namespace {

// The next '.'-separated token of `s`, consumed; nullopt when `s` is used up.
std::optional<std::string_view> next_token(std::string_view& s, bool& done) {
  if (done)
    return std::nullopt;
  auto dot = s.find('.');
  auto t = s.substr(0, dot);
  if (dot == std::string_view::npos)
    done = true;
  else
    s.remove_prefix(dot + 1);
  return t;
}

} // namespace

// Runs for every subscription on every message: no allocation.
bool subject_matches(std::string_view pattern, std::string_view subject) {
  bool p_done = false, s_done = false;
  for (;;) {
    auto p = next_token(pattern, p_done);
    auto s = next_token(subject, s_done);
    if (!p)
      return !s;
    if (*p == ">")
      return p_done && s.has_value();
    if (!s || (*p != "*" && *p != *s))
      return false;
  }
}

bool valid_token(std::string_view token) {
  if (token.empty())
    return false;
  return std::none_of(token.begin(), token.end(), [](char c) {
    return c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
  });
}

struct in_process_bus::impl {
  using clock = std::chrono::steady_clock;

  struct sub {
    std::string pattern;
    std::string group;
    handler h;
    std::atomic<bool> active{true};
  };
  struct pending_request {
    std::function<void(result<std::string>)> done;
    clock::time_point deadline;
  };

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, std::shared_ptr<sub>> subs;
  std::map<std::string, std::size_t> group_turn;  // round robin per group name
  std::deque<message> queue;
  std::map<std::string, pending_request> requests;  // by reply subject
  std::uint64_t next_id = 1;
  bool stopping = false;

  std::mutex delivering;  // held while a handler runs
  std::atomic<std::thread::id> delivery_thread;
  std::thread thread;

  void run() {
    delivery_thread.store(std::this_thread::get_id());
    std::unique_lock lock{mu};
    for (;;) {
      expire(lock);
      if (stopping)
        break;
      if (queue.empty()) {
        auto next = earliest_deadline();
        if (next)
          cv.wait_until(lock, *next);
        else
          cv.wait(lock);
        continue;
      }
      auto m = std::move(queue.front());
      queue.pop_front();
      dispatch(lock, std::move(m));
    }
    auto left = std::move(requests);
    requests.clear();
    lock.unlock();
    for (auto& [subject, r] : left)
      r.done(error{"closed", "the bus stopped"});
  }

  std::optional<clock::time_point> earliest_deadline() const {
    std::optional<clock::time_point> out;
    for (auto& [subject, r] : requests)
      if (!out || r.deadline < *out)
        out = r.deadline;
    return out;
  }

  void expire(std::unique_lock<std::mutex>& lock) {
    auto now = clock::now();
    std::vector<std::function<void(result<std::string>)>> late;
    for (auto it = requests.begin(); it != requests.end();)
      if (it->second.deadline <= now) {
        late.push_back(std::move(it->second.done));
        it = requests.erase(it);
      } else {
        ++it;
      }
    if (late.empty())
      return;
    lock.unlock();
    for (auto& done : late)
      done(error{"timeout", "no reply in time"});
    lock.lock();
  }

  void dispatch(std::unique_lock<std::mutex>& lock, message m) {
    if (auto it = requests.find(m.subject); it != requests.end()) {
      auto done = std::move(it->second.done);
      requests.erase(it);
      lock.unlock();
      done(std::move(m.data));
      lock.lock();
      return;
    }
    std::vector<std::shared_ptr<sub>> to;
    std::map<std::string, std::vector<std::shared_ptr<sub>>> groups;
    for (auto& [id, s] : subs) {
      if (!subject_matches(s->pattern, m.subject))
        continue;
      if (s->group.empty())
        to.push_back(s);
      else
        groups[s->group].push_back(s);
    }
    for (auto& [name, members] : groups)
      to.push_back(members[group_turn[name]++ % members.size()]);
    if (to.empty()) {
      // Like NATS: a request nobody can answer fails at once.
      if (auto it = requests.find(m.reply_to); it != requests.end()) {
        auto done = std::move(it->second.done);
        requests.erase(it);
        lock.unlock();
        done(error{"no_responders", "nothing subscribes to " + m.subject});
        lock.lock();
      }
      return;
    }
    lock.unlock();
    {
      std::lock_guard busy{delivering};
      for (auto& s : to)
        if (s->active)
          s->h(m);
    }
    lock.lock();
  }
};

namespace {

class in_process_subscription final : public subscription {
 public:
  in_process_subscription(std::shared_ptr<in_process_bus::impl> bus, std::uint64_t id,
                          std::shared_ptr<in_process_bus::impl::sub> s)
      : bus_(std::move(bus)), id_(id), sub_(std::move(s)) {}
  ~in_process_subscription() override {
    sub_->active = false;
    {
      std::lock_guard lock{bus_->mu};
      bus_->subs.erase(id_);
    }
    // Wait for a handler call in progress, unless this is that call.
    if (std::this_thread::get_id() != bus_->delivery_thread.load())
      std::lock_guard wait{bus_->delivering};
  }

 private:
  std::shared_ptr<in_process_bus::impl> bus_;
  std::uint64_t id_;
  std::shared_ptr<in_process_bus::impl::sub> sub_;
};

} // namespace

in_process_bus::in_process_bus() : impl_(std::make_shared<impl>()) {
  impl_->thread = std::thread{[p = impl_.get()] { p->run(); }};
}

in_process_bus::~in_process_bus() {
  {
    std::lock_guard lock{impl_->mu};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

status_result in_process_bus::publish(std::string subject, std::string data, std::string reply_to) {
  std::function<void(result<std::string>)> reply_done;
  {
    std::lock_guard lock{impl_->mu};
    if (impl_->stopping)
      return error{"closed", "the bus stopped"};
    // A reply goes straight to its requester, on this thread: nothing else
    // listens on an inbox, and the hop through the delivery thread was the
    // largest cost of a request/reply round trip.
    if (auto it = impl_->requests.find(subject); it != impl_->requests.end()) {
      reply_done = std::move(it->second.done);
      impl_->requests.erase(it);
    } else {
      impl_->queue.push_back({std::move(subject), std::move(reply_to), std::move(data)});
    }
  }
  if (reply_done) {
    reply_done(std::move(data));
    return ok;
  }
  impl_->cv.notify_one();
  return ok;
}

std::unique_ptr<subscription> in_process_bus::subscribe(std::string pattern, handler h,
                                                        std::string queue_group) {
  auto s = std::make_shared<impl::sub>();
  s->pattern = std::move(pattern);
  s->group = std::move(queue_group);
  s->h = std::move(h);
  std::uint64_t id;
  {
    std::lock_guard lock{impl_->mu};
    id = impl_->next_id++;
    impl_->subs.emplace(id, s);
  }
  return std::make_unique<in_process_subscription>(impl_, id, std::move(s));
}

void in_process_bus::request(std::string subject, std::string data,
                             std::chrono::milliseconds timeout,
                             std::function<void(result<std::string>)> done) {
  {
    std::lock_guard lock{impl_->mu};
    if (!impl_->stopping) {
      auto inbox = "_INBOX." + std::to_string(impl_->next_id++);
      impl_->requests[inbox] = {std::move(done), impl::clock::now() + timeout};
      impl_->queue.push_back({std::move(subject), std::move(inbox), std::move(data)});
      done = nullptr;
    }
  }
  if (done)
    return done(error{"closed", "the bus stopped"});
  impl_->cv.notify_one();
}

} // namespace kiln::bus
