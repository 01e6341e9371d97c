#include "storage/jetstream_link.hpp"

#include "events/nats_message_bin.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace kiln::storage::jetstream {

std::string status_text(natsStatus s, jsErrCode code) {
  std::string out = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last && *last && out != last)
    out += std::string{": "} + last;
  if (code)
    out += " (JetStream error " + std::to_string(code) + ")";
  return out;
}

result<std::unique_ptr<link>> link::connect(const std::vector<std::string>& servers,
                                            const std::string& name,
                                            std::chrono::milliseconds ack_timeout,
                                            async_acks acks) {
  if (servers.empty())
    return error{"invalid_argument", "no NATS servers given"};
  auto l = std::unique_ptr<link>{new link};
  natsOptions* no = nullptr;
  if (natsOptions_Create(&no) != NATS_OK)
    return error{"io", "cannot make NATS options"};
  std::vector<const char*> urls;
  for (auto& s : servers)
    urls.push_back(s.c_str());
  natsOptions_SetServers(no, urls.data(), static_cast<int>(urls.size()));
  natsOptions_SetName(no, name.c_str());
  natsOptions_SetTimeout(no, 2000);
  natsOptions_SetReconnectWait(no, 250);
  natsOptions_SetMaxReconnect(no, -1);
  // Each publish is written at once rather than by the flusher thread: a
  // thread woken per message costs more here than the system call saved.
  natsOptions_SetSendAsap(no, true);
  // The library's delivery pool (one thread unless the process asks for
  // more) serves the acks and the copy alike: an ack and the copied message
  // that usually comes with it take one wake-up, not two.
  if (acks.one_delivery_thread)
    natsOptions_UseGlobalMessageDelivery(no, true);
  auto s = natsConnection_Connect(&l->conn_, no);
  natsOptions_Destroy(no);
  if (s != NATS_OK)
    return error{"unavailable", "no NATS server answers (" + status_text(s) + ")"};
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = ack_timeout.count();
  jo.PublishAsync.AckHandler = acks.handler;
  jo.PublishAsync.AckHandlerClosure = acks.closure;
  if (auto st = natsConnection_JetStream(&l->js_, l->conn_, &jo); st != NATS_OK)
    return error{"unavailable", "JetStream: " + status_text(st)};
  return l;
}

link::~link() {
  if (js_)
    jsCtx_Destroy(js_);
  if (conn_) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
}

namespace {

// A JetStream cluster still electing its leaders (just started, or started
// again whole) times out: a core started with it waits, up to 90 s, rather
// than giving up. `call` returns its status and sets the JetStream code.
template <class Call>
std::pair<natsStatus, jsErrCode> while_electing(const std::string& what, Call call) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{90};
  for (;;) {
    auto code = static_cast<jsErrCode>(0);
    natsStatus s = call(code);
    // A cluster still forming has too few peers known to place a stream
    // (JSClusterNoPeersErr) for its first seconds.
    bool not_ready = s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || code == JSClusterNotAvailErr
                     || code == JSStreamOfflineErr || code == JSClusterNoPeersErr;
    if (s == NATS_OK || !not_ready || std::chrono::steady_clock::now() >= give_up)
      return {s, code};
    spdlog::warn("jetstream {} state=waiting reason=\"{}\"", what, status_text(s, code));
    std::this_thread::sleep_for(std::chrono::seconds{1});
  }
}

} // namespace

result<std::uint64_t> link::ensure_stream(const stream_spec& spec) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {spec.subjects.c_str()};
  cfg.Name = spec.name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Replicas = spec.replicas;
  cfg.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.max_age).count();
  cfg.DenyDelete = spec.deny_delete;
  cfg.DenyPurge = spec.deny_delete;
  jsStreamInfo* info = nullptr;
  auto [s, code] = while_electing("stream=" + spec.name, [&](jsErrCode& code) {
    auto s = js_GetStreamInfo(&info, js_, spec.name.c_str(), nullptr, &code);
    if (s != NATS_OK && code == JSStreamNotFoundErr)
      s = js_AddStream(&info, js_, &cfg, nullptr, &code);
    return s;
  });
  if (s != NATS_OK)
    return error{"unavailable", "JetStream stream " + spec.name + ": " + status_text(s, code)};
  auto last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  return last;
}

result<std::uint64_t> link::last_seq(const std::string& stream) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
  if (s != NATS_OK)
    return error{"io", "JetStream stream " + stream + ": " + status_text(s, code)};
  auto last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  return last;
}

result<stream_placement> link::placement(const std::string& stream) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr)
    return error{"not_found", "no JetStream stream " + stream};
  if (s != NATS_OK)
    return error{"io", "JetStream stream " + stream + ": " + status_text(s, code)};
  stream_placement out{stream, {}, {}};
  if (auto c = info->Cluster) {  // none on a server outside a cluster
    if (c->Leader) {
      out.leader = c->Leader;
      out.servers.push_back(c->Leader);
    }
    for (int i = 0; i < c->ReplicasLen; ++i)
      if (c->Replicas[i] && c->Replicas[i]->Name)
        out.servers.push_back(c->Replicas[i]->Name);
  }
  jsStreamInfo_Destroy(info);
  return out;
}

status_result link::step_down(const std::string& stream) {
  natsMsg* reply = nullptr;
  auto subject = "$JS.API.STREAM.LEADER.STEPDOWN." + stream;
  auto s = natsConnection_RequestString(&reply, conn_, subject.c_str(), "", 10'000);
  if (s != NATS_OK)
    return error{"io", "step-down of JetStream stream " + stream + ": " + status_text(s)};
  auto answer = nlohmann::json::parse(
    std::string_view{natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply))},
    nullptr, false);
  natsMsg_Destroy(reply);
  if (answer.is_object() && answer.value("success", false))
    return ok;
  std::string why = "unreadable answer";
  if (answer.is_object() && answer.contains("error") && answer["error"].is_object())
    why = answer["error"].value("description", why);
  return error{"io", "step-down of JetStream stream " + stream + ": " + why};
}

result<std::string> link::message_at_start(const std::string& stream, std::uint64_t seq) {
  natsMsg* msg = nullptr;
  auto [s, code] = while_electing("stream=" + stream, [&](jsErrCode& code) {
    return js_GetMsg(&msg, js_, stream.c_str(), seq, nullptr, &code);
  });
  if (s != NATS_OK)
    return error{"io", "cannot read message " + std::to_string(seq) + " of JetStream stream "
                         + stream + ": " + status_text(s, code)};
  std::string data{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
  natsMsg_Destroy(msg);
  return data;
}

struct ordered_copy::box {
  handler h;
  std::mutex mu;
  bool active = true;

  static void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
    auto& b = *static_cast<box*>(closure);
    {
      std::lock_guard lock{b.mu};
      jsMsgMetaData* meta = nullptr;
      if (b.active && natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        auto seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
        b.h(seq, natsMsg_GetSubject(m),
            std::string{natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))});
      }
    }
    bus::dispose(m);
  }
};

result<std::unique_ptr<ordered_copy>> ordered_copy::start(link& l, const std::string& stream,
                                                          const std::string& subjects,
                                                          std::uint64_t after, handler on_message) {
  auto b = std::make_unique<box>();
  b->h = std::move(on_message);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = after + 1;
  natsSubscription* sub = nullptr;
  auto [s, code] = while_electing("copy=" + stream, [&](jsErrCode& code) {
    return js_Subscribe(&sub, l.js(), subjects.c_str(), &box::on_msg, b.get(), nullptr, &so, &code);
  });
  if (s != NATS_OK)
    return error{"io", "cannot follow JetStream stream " + stream + ": " + status_text(s, code)};
  return std::unique_ptr<ordered_copy>{new ordered_copy{l.conn(), sub, std::move(b)}};
}

ordered_copy::ordered_copy(natsConnection* conn, natsSubscription* sub, std::unique_ptr<box> b)
    : conn_(conn), sub_(sub), box_(std::move(b)) {}

ordered_copy::~ordered_copy() {
  {
    std::lock_guard lock{box_->mu};
    box_->active = false;
  }
  // Unsubscribing deletes the consumer, a request that waits out its whole
  // timeout with no server; the server drops an idle ordered consumer anyway.
  if (natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED)
    natsSubscription_Unsubscribe(sub_);
  natsSubscription_Destroy(sub_);
}

bool copy_progress::take(std::uint64_t seq) {
  std::lock_guard lock{mu_};
  if (broken_ || stopped_ || seq <= requested_)
    return false;
  requested_ = seq;
  return true;
}

void copy_progress::done(std::uint64_t seq) {
  std::vector<std::function<void(bool)>> ready;
  {
    std::lock_guard lock{mu_};
    // Copiers may tell of two messages out of order (see take).
    done_ = std::max(done_, seq);
    auto end = waiters_.upper_bound(seq);
    for (auto it = waiters_.begin(); it != end; ++it)
      ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
  }
  cv_.notify_all();
  for (auto& f : ready)
    f(true);
}

void copy_progress::stop(std::optional<error> why) {
  std::multimap<std::uint64_t, std::function<void(bool)>> gone;
  {
    std::lock_guard lock{mu_};
    if (why && !broken_)
      broken_ = std::move(why);
    stopped_ = true;
    gone.swap(waiters_);
  }
  cv_.notify_all();
  for (auto& [seq, f] : gone)
    f(false);
}

void copy_progress::when_done(std::uint64_t seq, std::function<void(bool)> f) {
  std::unique_lock lock{mu_};
  if (done_ < seq && !broken_ && !stopped_) {
    waiters_.emplace(seq, std::move(f));
    return;
  }
  bool ok = done_ >= seq;
  lock.unlock();
  f(ok);
}

bool copy_progress::wait_for(std::uint64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock lock{mu_};
  cv_.wait_for(lock, timeout, [&] { return done_ >= seq || broken_ || stopped_; });
  return done_ >= seq;
}

std::uint64_t copy_progress::copied() const {
  std::lock_guard lock{mu_};
  return done_;
}

std::uint64_t copy_progress::taken() const {
  std::lock_guard lock{mu_};
  return requested_;
}

std::optional<error> copy_progress::broken() const {
  std::lock_guard lock{mu_};
  return broken_;
}

} // namespace kiln::storage::jetstream
