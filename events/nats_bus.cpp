#include "events/nats_bus.hpp"

#include "events/nats_message_bin.hpp"

#include <nats/nats.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace kiln::bus {

namespace {

std::string status_text(natsStatus s) {
  std::string out = natsStatus_GetText(s);
  natsStatus ignored;
  if (auto last = nats_GetLastError(&ignored); last && *last)
    out += std::string{": "} + last;
  return out;
}

// A handler and whether it may still run: destroying the subscription
// takes the lock, so it waits for a call in progress and stops later ones.
struct delivery {
  handler h;
  std::mutex mu;
  bool active = true;
};

void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto& d = *static_cast<delivery*>(closure);
  {
    std::lock_guard lock{d.mu};
    if (d.active) {
      const char* reply = natsMsg_GetReply(msg);
      d.h(message{natsMsg_GetSubject(msg), reply ? reply : "",
                  std::string{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))}});
    }
  }
  dispose(msg);
}

class nats_subscription final : public subscription {
 public:
  nats_subscription(natsSubscription* sub, std::unique_ptr<delivery> d)
      : sub_(sub), d_(std::move(d)) {}
  ~nats_subscription() override {
    {
      std::lock_guard lock{d_->mu};
      d_->active = false;
    }
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }

 private:
  natsSubscription* sub_;
  std::unique_ptr<delivery> d_;
};

} // namespace

struct nats_bus::impl {
  natsConnection* conn = nullptr;
  natsSubscription* inbox_sub = nullptr;
  std::string inbox;  // "_INBOX.<unique>."
  nats_options o;

  // Requests waiting for their reply, by token; the timer thread fails the late ones.
  struct pending {
    std::function<void(result<std::string>)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, pending> waiting;
  std::uint64_t next = 1;
  bool stopping = false;
  // When the timer thread wakes next: a request due before then wakes it.
  std::chrono::steady_clock::time_point wake_at;
  std::thread timer;

  std::mutex closed_mu;
  std::condition_variable closed_cv;
  bool closed = false;

  std::function<void(result<std::string>)> take(std::uint64_t token) {
    std::lock_guard lock{mu};
    auto it = waiting.find(token);
    if (it == waiting.end())
      return {};
    auto done = std::move(it->second.done);
    waiting.erase(it);
    return done;
  }

  static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto& self = *static_cast<impl*>(closure);
    std::string subject = natsMsg_GetSubject(msg);
    auto token = std::strtoull(subject.c_str() + self.inbox.size(), nullptr, 10);
    if (auto done = self.take(token)) {
      if (natsMsg_IsNoResponders(msg))
        done(error{"no_responders", "nobody answers on that subject"});
      else
        done(std::string{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))});
    }
    dispose(msg);
  }

  static void on_closed(natsConnection*, void* closure) {
    auto& self = *static_cast<impl*>(closure);
    std::lock_guard lock{self.closed_mu};
    self.closed = true;
    self.closed_cv.notify_all();
  }

  void expire_loop() {
    std::unique_lock lock{mu};
    while (!stopping) {
      auto now = std::chrono::steady_clock::now();
      std::vector<std::function<void(result<std::string>)>> late;
      auto soonest = now + std::chrono::seconds{1};
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (it->second.deadline <= now) {
          late.push_back(std::move(it->second.done));
          it = waiting.erase(it);
        } else {
          soonest = std::min(soonest, it->second.deadline);
          ++it;
        }
      }
      if (!late.empty()) {
        lock.unlock();
        for (auto& done : late)
          done(error{"timeout", "no reply in time"});
        lock.lock();
        continue;
      }
      wake_at = soonest;
      cv.wait_until(lock, soonest);
    }
  }
};

result<std::unique_ptr<nats_bus>> nats_bus::connect(nats_options o) {
  auto i = std::make_unique<impl>();
  i->o = o;
  natsOptions* opts = nullptr;
  if (auto s = natsOptions_Create(&opts); s != NATS_OK)
    return error{"unavailable", "NATS options: " + status_text(s)};
  std::vector<const char*> urls;
  for (auto& u : o.servers)
    urls.push_back(u.c_str());
  natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  natsOptions_SetName(opts, o.name.c_str());
  natsOptions_SetTimeout(opts, o.connect_timeout.count());
  natsOptions_SetReconnectWait(opts, o.reconnect_wait.count());
  natsOptions_SetMaxReconnect(opts, o.max_reconnect);
  natsOptions_SetClosedCB(opts, &impl::on_closed, i.get());
  // Written at once: NATS.c's flusher thread otherwise sleeps a millisecond
  // before it writes, and a request and its reply took 2 ms on loopback.
  natsOptions_SetSendAsap(opts, true);
  auto s = natsConnection_Connect(&i->conn, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK)
    return error{"unavailable", "no NATS server answers (" + status_text(s) + ")"};
  natsInbox* inbox = nullptr;
  natsInbox_Create(&inbox);
  i->inbox = std::string{inbox} + ".";
  natsInbox_Destroy(inbox);
  s = natsConnection_Subscribe(&i->inbox_sub, i->conn, (i->inbox + "*").c_str(), &impl::on_reply,
                               i.get());
  if (s != NATS_OK) {
    natsConnection_Destroy(i->conn);
    return error{"unavailable", "NATS inbox: " + status_text(s)};
  }
  i->timer = std::thread{[p = i.get()] { p->expire_loop(); }};
  return std::unique_ptr<nats_bus>{new nats_bus{std::move(i)}};
}

nats_bus::nats_bus(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

nats_bus::~nats_bus() {
  auto& i = *impl_;
  // Drain: what was published goes out and what arrived is handled first.
  if (natsConnection_DrainTimeout(i.conn, i.o.drain_timeout.count()) == NATS_OK) {
    std::unique_lock lock{i.closed_mu};
    i.closed_cv.wait_for(lock, i.o.drain_timeout + std::chrono::seconds{1}, [&] { return i.closed; });
  }
  {
    std::lock_guard lock{i.mu};
    i.stopping = true;
  }
  i.cv.notify_all();
  i.timer.join();
  for (auto& [token, p] : i.waiting)
    p.done(error{"closed", "the bus is closing"});
  natsSubscription_Destroy(i.inbox_sub);
  natsConnection_Destroy(i.conn);
}

status_result nats_bus::publish(std::string subject, std::string data, std::string reply_to) {
  auto s = reply_to.empty()
             ? natsConnection_Publish(impl_->conn, subject.c_str(), data.data(),
                                      static_cast<int>(data.size()))
             : natsConnection_PublishRequest(impl_->conn, subject.c_str(), reply_to.c_str(),
                                             data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK)
    return error{"unavailable", "publish to " + subject + ": " + status_text(s)};
  return ok;
}

status_result nats_bus::publish_once(std::string subject, std::string data, std::string msg_id) {
  natsMsg* msg = nullptr;
  auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK)
    s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id.c_str());
  if (s == NATS_OK)
    s = natsConnection_PublishMsg(impl_->conn, msg);
  dispose(msg);
  if (s != NATS_OK)
    return error{"unavailable", "publish to " + subject + ": " + status_text(s)};
  return ok;
}

status_result nats_bus::keep_stream(const std::string& name, const std::string& subjects,
                                    std::chrono::seconds max_age, int replicas) {
  jsCtx* js = nullptr;
  if (auto s = natsConnection_JetStream(&js, impl_->conn, nullptr); s != NATS_OK)
    return error{"unavailable", "JetStream: " + status_text(s)};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subject_list[] = {subjects.c_str()};
  cfg.Name = name.c_str();
  cfg.Subjects = subject_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(max_age).count();
  cfg.Replicas = replicas;
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto s = js_AddStream(&info, js, &cfg, nullptr, &code);
  if (s != NATS_OK) {
    // It exists (from an earlier start): bring its limits up to date.
    s = js_UpdateStream(&info, js, &cfg, nullptr, &code);
  }
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  if (s != NATS_OK)
    return error{"unavailable", "JetStream stream " + name + ": " + status_text(s)
                                  + (code ? " (" + std::to_string(code) + ")" : "")};
  return ok;
}

std::unique_ptr<subscription> nats_bus::subscribe(std::string pattern, handler h,
                                                  std::string queue_group) {
  auto d = std::make_unique<delivery>();
  d->h = std::move(h);
  natsSubscription* sub = nullptr;
  auto s = queue_group.empty()
             ? natsConnection_Subscribe(&sub, impl_->conn, pattern.c_str(), &on_message, d.get())
             : natsConnection_QueueSubscribe(&sub, impl_->conn, pattern.c_str(),
                                             queue_group.c_str(), &on_message, d.get());
  if (s != NATS_OK)
    return nullptr;
  // The server has the interest before anyone publishes after this returns.
  natsConnection_FlushTimeout(impl_->conn, impl_->o.connect_timeout.count());
  return std::make_unique<nats_subscription>(sub, std::move(d));
}

void nats_bus::request(std::string subject, std::string data, std::chrono::milliseconds timeout,
                       std::function<void(result<std::string>)> done) {
  std::uint64_t token;
  bool sooner = false;
  {
    std::lock_guard lock{impl_->mu};
    token = impl_->next++;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    impl_->waiting[token] = {std::move(done), deadline};
    sooner = deadline < impl_->wake_at;
  }
  // Only when it must wake sooner: a wake-up per request cost a context
  // switch per request.
  if (sooner)
    impl_->cv.notify_all();
  auto sent = publish(std::move(subject), std::move(data), impl_->inbox + std::to_string(token));
  if (!sent)
    if (auto d = impl_->take(token))
      d(sent.error());
}

} // namespace kiln::bus
