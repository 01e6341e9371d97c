#include "storage/jetstream_event_log.hpp"

#include "events/codec.hpp"
#include "events/subjects.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace kiln::storage {

namespace {

std::string status_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last && *last && last != out)
    out += std::string{": "} + last;
  if (code)
    out += " (JetStream error " + std::to_string(code) + ")";
  return out;
}

struct publish_job {
  append_request req;
  append_callback done;
};

} // namespace

struct jetstream_event_log::impl : std::enable_shared_from_this<impl> {
  rocksdb_event_log& local;
  jetstream_log_options o;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;

  impl(rocksdb_event_log& l, jetstream_log_options opts) : local(l), o(std::move(opts)) {}

  // ---- the copy: stream -> local log, in order ----
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t requested = 0;  // handed to the local log, in order
  std::uint64_t ingested = 0;   // the local log holds every commit up to here
  std::optional<error> broken;  // the copy cannot go on (the local log failed)
  bool stopping = false;
  // Called once the copy holds the key's commit (true), or never will (false).
  std::multimap<std::uint64_t, std::function<void(bool)>> waiters;

  // The subscription's callback may still be running while it goes away;
  // `delivering` is cleared under `delivery_mu` first.
  std::mutex delivery_mu;
  bool delivering = true;

  // ---- appends: one in flight per aggregate, in order ----
  std::deque<publish_job> jobs;
  std::unordered_set<std::string> in_flight;
  std::unordered_map<std::string, std::deque<publish_job>> waiting_streams;
  std::vector<std::thread> publishers;

  static void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
    auto& self = *static_cast<impl*>(closure);
    {
      std::lock_guard lock{self.delivery_mu};
      if (self.delivering) {
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
          auto seq = meta->Sequence.Stream;
          jsMsgMetaData_Destroy(meta);
          self.copy(seq, std::string{natsMsg_GetData(m),
                                     static_cast<std::size_t>(natsMsg_GetDataLength(m))});
        }
      }
    }
    natsMsg_Destroy(m);
  }

  void copy(std::uint64_t seq, std::string bytes) {
    {
      std::lock_guard lock{mu};
      if (broken || stopping || seq <= requested)
        return;  // an ordered consumer that restarted may send some again
      if (seq != requested + 1) {
        broken = make_error(errc::corrupt, "the cluster's log skipped from "
                                             + std::to_string(requested) + " to "
                                             + std::to_string(seq));
        spdlog::error("log copy=stopped reason=\"{}\"", broken->message);
        return;
      }
      requested = seq;
    }
    local.replicate_async(global_seq{seq}, std::move(bytes),
                          [self = shared_from_this(), seq](result<append_receipt> r) {
                            if (r)
                              return self->advance(seq);
                            spdlog::error("log copy=stopped seq={} error=\"{}\"", seq,
                                          r.error().message);
                            self->fail_waiters(r.error());
                          });
  }

  void advance(std::uint64_t seq) {
    std::vector<std::function<void(bool)>> ready;
    {
      std::lock_guard lock{mu};
      ingested = seq;
      auto end = waiters.upper_bound(seq);
      for (auto it = waiters.begin(); it != end; ++it)
        ready.push_back(std::move(it->second));
      waiters.erase(waiters.begin(), end);
    }
    cv.notify_all();
    for (auto& f : ready)
      f(true);
  }

  void fail_waiters(std::optional<error> why) {
    std::multimap<std::uint64_t, std::function<void(bool)>> gone;
    {
      std::lock_guard lock{mu};
      if (why && !broken)
        broken = std::move(why);
      gone.swap(waiters);
    }
    cv.notify_all();
    for (auto& [seq, f] : gone)
      f(false);
  }

  void when_copied(std::uint64_t seq, std::function<void(bool)> f) {
    {
      std::unique_lock lock{mu};
      if (ingested < seq && !broken && !stopping) {
        waiters.emplace(seq, std::move(f));
        return;
      }
    }
    std::unique_lock lock{mu};
    bool ok = ingested >= seq;
    lock.unlock();
    f(ok);
  }

  error copy_error() {
    std::lock_guard lock{mu};
    if (broken)
      return make_error(errc::io, "this core's copy of the cluster's log stopped: "
                                    + broken->message + "; restart the core");
    return make_error(errc::closed, "the log is closing");
  }

  result<std::uint64_t> stream_last_seq() {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetStreamInfo(&info, js, o.stream.c_str(), nullptr, &code);
    if (s != NATS_OK)
      return make_error(errc::io, "JetStream stream " + o.stream + ": " + status_text(s, code));
    auto last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    return last;
  }

  // ---- appends ----
  void submit(publish_job j) {
    {
      std::lock_guard lock{mu};
      if (stopping) {
        auto done = std::move(j.done);
        return done(make_error(errc::closed, "the log is closing"));
      }
      auto& stream = j.req.stream.value;
      if (in_flight.count(stream)) {
        waiting_streams[stream].push_back(std::move(j));
        return;
      }
      in_flight.insert(stream);
      jobs.push_back(std::move(j));
    }
    cv.notify_all();
  }

  // The stream's append is done: its next one may go.
  void release(const std::string& stream) {
    {
      std::lock_guard lock{mu};
      auto it = waiting_streams.find(stream);
      if (it == waiting_streams.end()) {
        in_flight.erase(stream);
        return;
      }
      jobs.push_back(std::move(it->second.front()));
      it->second.pop_front();
      if (it->second.empty())
        waiting_streams.erase(it);
    }
    cv.notify_all();
  }

  void publish_loop() {
    for (;;) {
      publish_job job;
      {
        std::unique_lock lock{mu};
        cv.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (jobs.empty())
          return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      publish(std::move(job));
    }
  }

  void finish(publish_job& j, result<append_receipt> r) {
    auto stream = j.req.stream.value;
    auto done = std::move(j.done);
    release(stream);
    done(std::move(r));
  }

  void publish(publish_job j) {
    auto& req = j.req;
    // The expected version, as the stream sequence of the aggregate's last
    // commit: what JetStream checks.
    auto current = local.last_version(req.stream);
    if (!current)
      return finish(j, current.error());
    if (current->value != req.expected.value)
      return finish(j, make_error(errc::conflict, "stream " + req.stream.value + " is at version "
                                                    + std::to_string(current->value) + ", expected "
                                                    + std::to_string(req.expected.value)));
    std::uint64_t expect_seq = 0;
    if (req.expected.value > 0) {
      auto last = local.read_stream(req.stream, req.expected, 1);
      if (!last)
        return finish(j, last.error());
      if (last->empty())
        return finish(j, make_error(errc::io, "stream " + req.stream.value + " has no version "
                                                + std::to_string(req.expected.value)));
      expect_seq = last->front().seq.value;
    }
    commit body{req.stream, stream_version{req.expected.value + 1}, req.meta, req.events};
    auto bytes = codec::encode_commit(body);
    auto last_version = body.last_version();
    auto subject = subjects::log_subject(req.stream);
    natsMsg* msg = nullptr;
    if (auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, bytes.data(),
                                static_cast<int>(bytes.size()));
        s != NATS_OK)
      return finish(j, make_error(errc::io, "cannot make a message: " + status_text(s)));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = o.ack_timeout.count();
    if (!req.meta.command_id.empty())
      po.MsgId = req.meta.command_id.c_str();
    if (expect_seq > 0)
      po.ExpectLastSubjectSeq = expect_seq;
    else
      po.ExpectNoMessage = true;
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_PublishMsg(&ack, js, msg, &po, &code);
    natsMsg_Destroy(msg);
    if (s == NATS_OK) {
      auto seq = ack->Sequence;
      bool duplicate = ack->Duplicate;
      jsPubAck_Destroy(ack);
      auto command = req.meta.command_id;
      // Shared: the callback may outlive this call, the job is moved in.
      auto pending = std::make_shared<publish_job>(std::move(j));
      when_copied(seq, [self = shared_from_this(), pending, seq, duplicate, last_version,
                        command](bool copied) {
        if (!copied)
          return self->finish(*pending, self->copy_error());
        if (!duplicate)
          return self->finish(*pending, append_receipt{global_seq{seq}, last_version});
        // Another core took this command first: its receipt.
        if (auto first = self->local.find_command(command))
          return self->finish(*pending, *first);
        auto c = self->local.read_all(global_seq{seq - 1}, 1);
        if (!c || c->empty())
          return self->finish(*pending, make_error(errc::io, "cannot read commit "
                                                               + std::to_string(seq)));
        self->finish(*pending, append_receipt{c->front().seq, c->front().body.last_version(), true});
      });
      return;
    }
    if (code == JSStreamWrongLastSequenceErr) {
      // Another core appended to the aggregate first. Once the copy holds
      // its commit, the caller re-reads the stream and decides again.
      auto last = stream_last_seq();
      auto pending = std::make_shared<publish_job>(std::move(j));
      auto conflict = make_error(errc::conflict, "stream " + pending->req.stream.value
                                                   + " moved on in the cluster's log");
      when_copied(last ? *last : 0,
                  [self = shared_from_this(), pending, conflict](bool) {
                    self->finish(*pending, conflict);
                  });
      return;
    }
    // Not acknowledged: it may or may not be in the stream. A retry with the
    // same command id finds out.
    finish(j, make_error(errc::io, "the cluster's log did not acknowledge the commit: "
                                     + status_text(s, code)));
  }

  result<natsSubscription*> start_copy(std::uint64_t after) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o.stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = after + 1;
    natsSubscription* s = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto st = js_Subscribe(&s, js, std::string{subjects::log_subjects}.c_str(), &on_msg, this,
                           nullptr, &so, &code);
    if (st != NATS_OK)
      return make_error(errc::io, "cannot follow the cluster's log: " + status_text(st, code));
    return s;
  }

  // The copy's last commit must be the stream's commit at that sequence.
  status_result check_copy(std::uint64_t stream_last) {
    auto mine = local.last_seq().value;
    if (mine == 0)
      return ok;
    if (mine > stream_last)
      return make_error(errc::invalid_argument,
                        "this data dir holds " + std::to_string(mine) + " commits and the "
                          "cluster's log " + std::to_string(stream_last)
                          + ": it is not a copy of this cluster's log (a core starts from an "
                            "empty data dir or a copy of another core's)");
    natsMsg* msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetMsg(&msg, js, o.stream.c_str(), mine, nullptr, &code);
    if (s != NATS_OK)
      return make_error(errc::io, "cannot read commit " + std::to_string(mine)
                                    + " of the cluster's log: " + status_text(s, code));
    auto theirs = codec::decode_commit(
      {natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))});
    natsMsg_Destroy(msg);
    auto own = local.read_all(global_seq{mine - 1}, 1);
    if (!theirs || !own || own->empty() || !(own->front().body == *theirs))
      return make_error(errc::invalid_argument,
                        "commit " + std::to_string(mine) + " of this data dir differs from the "
                          "cluster's log: it is not a copy of this cluster's log");
    return ok;
  }

  void shutdown() {
    {
      std::lock_guard lock{mu};
      if (stopping)
        return;
      stopping = true;
    }
    cv.notify_all();
    for (auto& t : publishers)
      t.join();
    publishers.clear();
    {
      std::lock_guard lock{delivery_mu};
      delivering = false;
    }
    if (sub) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
      sub = nullptr;
    }
    // Appends still waiting for the copy, and those queued behind them.
    fail_waiters(std::nullopt);
    std::deque<publish_job> left;
    {
      std::lock_guard lock{mu};
      for (auto& [stream, q] : waiting_streams)
        for (auto& j : q)
          left.push_back(std::move(j));
      waiting_streams.clear();
      for (auto& j : jobs)
        left.push_back(std::move(j));
      jobs.clear();
    }
    for (auto& j : left)
      j.done(make_error(errc::closed, "the log is closing"));
    if (js)
      jsCtx_Destroy(js);
    js = nullptr;
    if (conn) {
      natsConnection_Close(conn);
      natsConnection_Destroy(conn);
    }
    conn = nullptr;
  }
};

result<std::unique_ptr<jetstream_event_log>> jetstream_event_log::open(rocksdb_event_log& local,
                                                                       jetstream_log_options o) {
  auto p = std::make_shared<impl>(local, std::move(o));
  auto& opts = p->o;
  if (opts.servers.empty())
    return make_error(errc::invalid_argument, "the cluster's log needs NATS servers");
  natsOptions* no = nullptr;
  if (natsOptions_Create(&no) != NATS_OK)
    return make_error(errc::io, "cannot make NATS options");
  std::vector<const char*> urls;
  for (auto& s : opts.servers)
    urls.push_back(s.c_str());
  natsOptions_SetServers(no, urls.data(), static_cast<int>(urls.size()));
  natsOptions_SetName(no, opts.name.c_str());
  natsOptions_SetTimeout(no, 2000);
  natsOptions_SetReconnectWait(no, 250);
  natsOptions_SetMaxReconnect(no, -1);
  auto s = natsConnection_Connect(&p->conn, no);
  natsOptions_Destroy(no);
  if (s != NATS_OK)
    return error{"unavailable", "no NATS server answers (" + status_text(s) + ")"};
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = opts.ack_timeout.count();
  if (auto st = natsConnection_JetStream(&p->js, p->conn, &jo); st != NATS_OK) {
    p->shutdown();
    return error{"unavailable", "JetStream: " + status_text(st)};
  }

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects_list[] = {subjects::log_subjects.data()};
  std::string all{subjects::log_subjects};
  subjects_list[0] = all.c_str();
  cfg.Name = opts.stream.c_str();
  cfg.Subjects = subjects_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Replicas = opts.replicas;
  cfg.DenyDelete = true;
  cfg.DenyPurge = true;
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto st = js_GetStreamInfo(&info, p->js, opts.stream.c_str(), nullptr, &code);
  if (st != NATS_OK && code == JSStreamNotFoundErr)
    st = js_AddStream(&info, p->js, &cfg, nullptr, &code);
  if (st != NATS_OK) {
    p->shutdown();
    return error{"unavailable", "JetStream stream " + opts.stream + ": " + status_text(st, code)};
  }
  auto stream_last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  if (auto checked = p->check_copy(stream_last); !checked) {
    p->shutdown();
    return checked.error();
  }
  p->requested = p->ingested = local.last_seq().value;
  auto sub = p->start_copy(p->ingested);
  if (!sub) {
    p->shutdown();
    return sub.error();
  }
  p->sub = *sub;
  for (unsigned i = 0; i < std::max(1u, opts.publishers); ++i)
    p->publishers.emplace_back([raw = p.get()] { raw->publish_loop(); });
  spdlog::info("log cluster=jetstream stream={} replicas={} copied={} stream_last={}",
               opts.stream, opts.replicas, p->ingested, stream_last);
  return std::unique_ptr<jetstream_event_log>{new jetstream_event_log{std::move(p)}};
}

jetstream_event_log::jetstream_event_log(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

jetstream_event_log::~jetstream_event_log() { impl_->shutdown(); }

status_result jetstream_event_log::catch_up(std::chrono::milliseconds timeout) {
  auto last = impl_->stream_last_seq();
  if (!last)
    return last.error();
  std::unique_lock lock{impl_->mu};
  if (!impl_->cv.wait_for(lock, timeout, [&] {
        return impl_->ingested >= *last || impl_->broken || impl_->stopping;
      }))
    return make_error(errc::io, "the copy holds " + std::to_string(impl_->ingested) + " of "
                                  + std::to_string(*last) + " commits after "
                                  + std::to_string(timeout.count()) + " ms");
  if (impl_->ingested < *last) {
    lock.unlock();
    return impl_->copy_error();
  }
  return ok;
}

void jetstream_event_log::append_async(append_request req, append_callback done) {
  if (req.events.empty() || req.stream.value.empty())
    return done(make_error(errc::invalid_argument, "an append needs a stream and events"));
  if (!req.meta.command_id.empty())
    if (auto first = impl_->local.find_command(req.meta.command_id)) {
      if (!req.stream.value.empty() && first->seq.value > 0) {
        auto c = impl_->local.read_all(global_seq{first->seq.value - 1}, 1);
        if (c && !c->empty() && c->front().body.stream != req.stream)
          return done(make_error(errc::invalid_argument, "command id " + req.meta.command_id
                                                           + " was used on another stream"));
      }
      return done(*first);
    }
  impl_->submit(publish_job{std::move(req), std::move(done)});
}

result<std::vector<logged_commit>>
jetstream_event_log::read_stream(const stream_id& stream, stream_version from, std::size_t max) {
  return impl_->local.read_stream(stream, from, max);
}
result<std::vector<logged_commit>> jetstream_event_log::read_all(global_seq after, std::size_t max) {
  return impl_->local.read_all(after, max);
}
result<stream_version> jetstream_event_log::last_version(const stream_id& stream) {
  return impl_->local.last_version(stream);
}
std::optional<append_receipt> jetstream_event_log::find_command(const std::string& command_id) {
  return impl_->local.find_command(command_id);
}
global_seq jetstream_event_log::last_seq() const { return impl_->local.last_seq(); }
std::unique_ptr<subscription> jetstream_event_log::subscribe(global_seq after, commit_handler on_commit,
                                                             error_handler on_error) {
  return impl_->local.subscribe(after, std::move(on_commit), std::move(on_error));
}
status_result jetstream_event_log::save_snapshot(const stream_id& stream, const snapshot& s) {
  return impl_->local.save_snapshot(stream, s);
}
result<std::optional<snapshot>> jetstream_event_log::load_snapshot(const stream_id& stream) {
  return impl_->local.load_snapshot(stream);
}

} // namespace kiln::storage
