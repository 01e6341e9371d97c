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

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    auto dot = s.find('.');
    out.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos)
      return out;
    s.remove_prefix(dot + 1);
  }
}

} // namespace

bool subject_matches(std::string_view pattern, std::string_view subject) {
  auto p = tokens(pattern);
  auto s = tokens(subject);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">")
      return i == p.size() - 1 && s.size() > i;
    if (i >= s.size() || (p[i] != "*" && p[i] != s[i]))
      return false;
  }
  return p.size() == s.size();
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
  {
    std::lock_guard lock{impl_->mu};
    if (impl_->stopping)
      return error{"closed", "the bus stopped"};
    impl_->queue.push_back({std::move(subject), std::move(reply_to), std::move(data)});
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
