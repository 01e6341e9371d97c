#include "storage/jetstream_event_log.hpp"

#include "events/codec.hpp"
#include "events/nats_message_bin.hpp"
#include "events/subjects.hpp"
#include "storage/jetstream_link.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace kiln::storage {

namespace {

using jetstream::status_text;

struct publish_job {
  append_request req;
  append_callback done;
  // Set: not an append but work for a publisher thread, told false if the
  // log closes before it runs.
  std::function<void(bool run)> task;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
};

// The subject's last sequence in JetStream's refusal of an append that
// expected another ("wrong last sequence: 1234"); none if it says otherwise.
std::optional<std::uint64_t> wrong_last_sequence(const char* text) {
  if (!text)
    return std::nullopt;
  std::string_view t{text};
  constexpr std::string_view key = "wrong last sequence: ";
  auto at = t.find(key);
  if (at == std::string_view::npos)
    return std::nullopt;
  std::uint64_t seq = 0;
  auto digits = t.substr(at + key.size());
  if (std::from_chars(digits.data(), digits.data() + digits.size(), seq).ec != std::errc{})
    return std::nullopt;
  return seq;
}

} // namespace

struct jetstream_event_log::impl : std::enable_shared_from_this<impl> {
  rocksdb_event_log& local;
  jetstream_log_options o;
  std::unique_ptr<jetstream::link> link;
  std::unique_ptr<jetstream::ordered_copy> follower;
  jetstream::copy_progress progress;

  impl(rocksdb_event_log& l, jetstream_log_options opts) : local(l), o(std::move(opts)) {}

  // ---- appends: one in flight per aggregate, in order ----
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::deque<publish_job> jobs;
  std::unordered_set<std::string> in_flight;
  std::unordered_map<std::string, std::deque<publish_job>> waiting_streams;
  std::vector<std::thread> publishers;
  // Published, not yet acknowledged.
  jetstream::pending_acks<publish_job> acks;

  // ---- the copy: stream -> local log, in order ----
  std::mutex copy_mu;
  std::map<std::uint64_t, std::pair<std::string, std::string>> early;  // seq -> subject, commit
  static constexpr std::size_t max_early = 10'000;
  // What the copy made of each recent stream message: the local receipt,
  // or the conflict that left it out.
  jetstream::recent_outcomes<result<append_receipt>> outcomes{100'000};
  // The stream sequence of each subject's last message the copy has seen,
  // taken or left out: what JetStream checks an append against.
  std::mutex subjects_mu;
  std::unordered_map<std::string, std::uint64_t> subject_last;
  static constexpr std::size_t max_subjects = 200'000;

  // Copies the stream's message `seq` into this core's log, in the stream's
  // order. The ordered consumer hands over every message; the appender that
  // published one hands it over too, as soon as its ack comes (`own`): the
  // consumer's delivery lags the ack by a few hundred microseconds, which
  // was most of what an append cost beyond its publish. An own message that
  // comes before the one in front of it waits in `early` for it. The log's
  // stream has no gaps (no delete, no expiry, a duplicate takes no
  // sequence), so seq - 1 is the one in front. Whichever hand-over comes
  // second finds the message taken.
  void copy(std::uint64_t seq, const std::string& subject, std::string bytes, bool own) {
    std::uint64_t last = 0;
    {
      std::lock_guard lock{copy_mu};  // take and write as one: in order
      if (own && progress.taken() + 1 != seq) {
        if (seq > progress.taken() && early.size() < max_early)
          early.emplace(seq, std::pair{subject, std::move(bytes)});
        return;
      }
      if (!copy_one(seq, subject, std::move(bytes)))
        return;
      last = seq;
      while (!early.empty()) {
        auto next = early.begin();
        if (next->first == last + 1) {
          if (!copy_one(next->first, next->second.first, std::move(next->second.second)))
            break;  // the copy broke: its waiters are told
          last = next->first;
        } else if (next->first > last) {
          break;
        }
        early.erase(next);
      }
    }
    progress.done(last);  // outside copy_mu: it runs the waiters' callbacks
  }

  // Under copy_mu. False when the message was seen before or the copy broke.
  bool copy_one(std::uint64_t seq, const std::string& subject, std::string bytes) {
    if (!progress.take(seq))
      return false;
    auto r = local.replicate(seq, std::move(bytes));
    if (!r && r.error().code != "conflict") {
      spdlog::error("log copy=stopped seq={} error=\"{}\"", seq, r.error().message);
      progress.stop(r.error());
      return false;
    }
    if (!r)
      spdlog::warn("log copy=left_out seq={} reason=\"{}\"", seq, r.error().message);
    outcomes.put(seq, r);
    std::lock_guard lock{subjects_mu};
    if (subject_last.size() >= max_subjects)
      subject_last.clear();
    subject_last[subject] = seq;
    return true;
  }

  // The sequence JetStream is to find as the subject's last (0: none),
  // known without asking it: the last the copy has seen on the subject, or
  // none for an aggregate this core's copy has never seen a commit of.
  // Only a hint for JetStream's check: the copy decides what is taken. A
  // wrong hint costs a refusal, after which the subject is looked up.
  std::optional<std::uint64_t> known_last(const std::string& subject, const append_request& req) {
    {
      std::lock_guard lock{subjects_mu};
      if (auto it = subject_last.find(subject); it != subject_last.end())
        return it->second;
    }
    if (req.expected.value == 0)
      if (auto v = local.last_version(req.stream); v && v->value == 0)
        return std::uint64_t{0};
    return std::nullopt;
  }

  // The subject's last message as JetStream has it (0: none), once the
  // copy holds it too; kept as the hint. Blocking: a publisher thread's.
  result<std::uint64_t> look_up_last(const std::string& subject) {
    natsMsg* msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetLastMsg(&msg, link->js(), o.stream.c_str(), subject.c_str(), nullptr, &code);
    if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr)
      return std::uint64_t{0};
    if (s != NATS_OK)
      return make_error(errc::io, "cannot read the last commit of " + subject + ": "
                                    + status_text(s, code));
    auto seq = natsMsg_GetSequence(msg);
    natsMsg_Destroy(msg);
    // JetStream's own answer may be ahead of the copy: the version check
    // that follows means something only once the copy holds it.
    progress.wait_for(seq, o.ack_timeout);
    raise_hint(subject, seq);
    return seq;
  }

  void raise_hint(const std::string& subject, std::uint64_t seq) {
    std::lock_guard lock{subjects_mu};
    auto& last = subject_last[subject];
    last = std::max(last, seq);
  }

  // The caller decides again once the copy holds `seq` (the subject's last
  // commit as JetStream has it): a conflict, or the first try's receipt.
  void conflict_once_copied(std::shared_ptr<publish_job> pending, std::uint64_t seq) {
    auto conflict = make_error(errc::conflict, "stream " + pending->req.stream.value
                                                 + " moved on in the cluster's log");
    progress.when_done(seq, [self = shared_from_this(), pending, conflict](bool) {
      // JetStream checks the sequence before the message id.
      self->conflict_or_duplicate(*pending, conflict);
    });
  }

  error copy_error() {
    if (auto why = progress.broken())
      return make_error(errc::io, "this core's copy of the cluster's log stopped: "
                                    + why->message + "; restart the core");
    return make_error(errc::closed, "the log is closing");
  }

  // ---- appends ----
  // One append per aggregate in flight, in order. An append whose subject's
  // last sequence is known is published on the caller's thread without
  // waiting for its ack (js_PublishMsgAsync); a publisher thread looks up the
  // others first. The ack's handler copies the commit and completes it.
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
    }
    start(std::move(j), false);
  }

  // Publishes at once when the subject's last sequence is known; otherwise
  // looks it up first, which blocks: only where `may_block` (a publisher
  // thread), else the job goes to one.
  void start(publish_job j, bool may_block) {
    auto subject = subjects::log_subject(j.req.stream);
    if (auto last = known_last(subject, j.req))
      return publish(std::move(j), subject, *last);
    if (!may_block)
      return queue(std::move(j));
    auto looked = look_up_last(subject);
    if (!looked)
      return finish(j, looked.error());
    publish(std::move(j), subject, *looked);
  }

  void queue(publish_job j) {
    {
      std::lock_guard lock{mu};
      if (stopping) {
        auto done = std::move(j.done);
        return done(make_error(errc::closed, "the log is closing"));
      }
      jobs.push_back(std::move(j));
    }
    // One job, one publisher: waking all of them for it cost each append
    // tens of microseconds of threads fighting over the lock.
    cv.notify_one();
  }

  // Blocking work (a JetStream request) off the caller's thread.
  void run_task(std::function<void(bool run)> task) {
    {
      std::lock_guard lock{mu};
      if (!stopping) {
        jobs.push_back({{}, {}, std::move(task)});
        task = nullptr;
      }
    }
    if (task)
      return task(false);
    cv.notify_one();
  }

  // The stream's append is done: its next one goes, through a publisher
  // thread (this may be the ack handler's, which must not wait on anything).
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
    cv.notify_one();
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
      if (job.task)
        job.task(true);
      else
        start(std::move(job), true);
    }
  }

  void finish(publish_job& j, result<append_receipt> r) {
    auto stream = j.req.stream.value;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                                    - j.submitted).count();
    if (ms > 5000)
      spdlog::warn("log append=slow stream={} ms={} outcome=\"{}\"", stream, ms,
                   r ? "seq " + std::to_string(r->seq.value) : r.error().message);
    auto done = std::move(j.done);
    release(stream);
    done(std::move(r));
  }

  // A retry whose first try won is a duplicate, not a conflict.
  void conflict_or_duplicate(publish_job& j, const error& conflict) {
    auto& id = j.req.meta.command_id;
    if (!id.empty())
      if (auto first = local.find_command(id))
        return finish(j, *first);
    finish(j, conflict);
  }

  // Never blocks: on the caller's thread, a publisher's or the ack handler's.
  void publish(publish_job j, const std::string& subject, std::uint64_t expect_seq) {
    auto& req = j.req;
    // JetStream checks the subject's last sequence, so that of two cores
    // deciding on one aggregate one is refused at once; the copy is what
    // decides in the end (a commit whose version is taken is left out).
    // The hint is read before the version check: a commit the copy takes in
    // between then fails the check here rather than pass JetStream's.
    auto current = local.last_version(req.stream);
    if (!current)
      return finish(j, current.error());
    if (current->value != req.expected.value) {
      auto conflict = make_error(errc::conflict, "stream " + req.stream.value + " is at version "
                                                   + std::to_string(current->value) + ", expected "
                                                   + std::to_string(req.expected.value));
      if (req.meta.command_id.empty())
        return finish(j, conflict);
      // The copy may have taken this command's first commit since it was
      // asked: once every commit handed to the copy is in, look again.
      auto pending = std::make_shared<publish_job>(std::move(j));
      return progress.when_done(progress.taken(), [self = shared_from_this(), pending, conflict](bool) {
        self->conflict_or_duplicate(*pending, conflict);
      });
    }
    commit body{req.stream, stream_version{req.expected.value + 1}, req.meta, req.events};
    auto bytes = codec::encode_commit(body);
    natsMsg* msg = nullptr;
    if (auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, bytes.data(),
                                static_cast<int>(bytes.size()));
        s != NATS_OK)
      return finish(j, make_error(errc::io, "cannot make a message: " + status_text(s)));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = o.ack_timeout.count();
    if (expect_seq > 0)
      po.ExpectLastSubjectSeq = expect_seq;
    else
      po.ExpectNoMessage = true;
    auto key = msg;
    auto command_id = req.meta.command_id;  // po.MsgId points into it
    po.MsgId = command_id.empty() ? nullptr : command_id.c_str();
    acks.add(key, std::move(j));
    auto s = js_PublishMsgAsync(link->js(), &msg, &po);
    if (s == NATS_OK)
      return;
    natsMsg_Destroy(msg);
    if (auto unsent = acks.take(key))
      finish(*unsent, make_error(errc::io, "cannot publish to the cluster's log: " + status_text(s)));
  }

  // Every ack and every failure of an async publish, on the delivery thread.
  void answered(publish_job j, natsMsg* msg, jsPubAck* ack, jsPubAckErr* failure) {
    if (ack)
      acknowledged(std::move(j), msg, ack->Sequence, ack->Duplicate);
    else
      refused(std::move(j), failure);
  }

  void acknowledged(publish_job j, natsMsg* msg, std::uint64_t seq, bool duplicate) {
    // The commit is the stream's message `seq`: copied now if next in line,
    // without waiting for the copy's delivery of it.
    if (!duplicate)
      copy(seq, natsMsg_GetSubject(msg),
           std::string{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))},
           true);
    // Shared: the callback may outlive this call, the job is moved in.
    auto pending = std::make_shared<publish_job>(std::move(j));
    progress.when_done(seq, [self = shared_from_this(), pending, seq, duplicate](bool copied) {
      if (!copied)
        return self->finish(*pending, self->copy_error());
      if (duplicate) {
        // Another core took this command first: its receipt.
        auto& id = pending->req.meta.command_id;
        if (auto first = self->local.find_command(id))
          return self->finish(*pending, *first);
        return self->finish(*pending, make_error(errc::io, "command " + id
                                                            + " is in the cluster's log but "
                                                              "not in this core's copy"));
      }
      auto outcome = self->outcomes.get(seq);
      if (!outcome)
        return self->finish(*pending, make_error(errc::io, "commit " + std::to_string(seq)
                                                             + " was copied too long ago to tell"));
      if (!*outcome)  // left out: it lost to a commit of the same version
        return self->conflict_or_duplicate(*pending, outcome->error());
      self->finish(*pending, **outcome);
    });
  }

  void refused(publish_job j, jsPubAckErr* failure) {
    auto code = failure ? failure->ErrCode : static_cast<jsErrCode>(0);
    if (code != JSStreamWrongLastSequenceErr) {
      // Not acknowledged: it may or may not be in the stream. A retry with
      // the same command id finds out.
      auto why = failure ? status_text(failure->Err, code)
                             + (failure->ErrText ? std::string{": "} + failure->ErrText : "")
                         : std::string{"no answer"};
      return finish(j, make_error(errc::io, "the cluster's log did not acknowledge the commit: "
                                              + why));
    }
    // Another core appended to the aggregate first, or the hint was stale.
    // Once the copy holds the subject's last commit, the caller re-reads the
    // stream and decides again. JetStream names that commit in its refusal
    // ("wrong last sequence: N"), which saves two requests to its API.
    auto pending = std::make_shared<publish_job>(std::move(j));
    if (auto last = failure ? wrong_last_sequence(failure->ErrText) : std::nullopt) {
      raise_hint(subjects::log_subject(pending->req.stream), *last);
      return conflict_once_copied(std::move(pending), *last);
    }
    // Asking JetStream blocks: a publisher's work.
    run_task([self = shared_from_this(), pending](bool run) {
      if (!run)
        return self->finish(*pending, make_error(errc::closed, "the log is closing"));
      auto subject = subjects::log_subject(pending->req.stream);
      (void) self->look_up_last(subject);
      auto last = self->link->last_seq(self->o.stream);
      self->conflict_once_copied(pending, last ? *last : 0);
    });
  }

  // The copy must be a copy of this stream: its last commit taken is the
  // stream's message at that sequence, and it has not copied past the end.
  status_result check_copy(std::uint64_t stream_last) {
    auto commits = local.last_seq().value;
    auto position = local.copy_position();
    auto taken = local.copy_taken();
    if (commits == 0)
      return ok;
    if (position == 0 || taken == 0)
      return make_error(errc::invalid_argument,
                        "this data dir holds " + std::to_string(commits) + " commits of its own: "
                          "it is not a copy of this cluster's log (a core starts from an empty "
                          "data dir or a copy of another core's)");
    if (position > stream_last)
      return make_error(errc::invalid_argument,
                        "this data dir has copied the cluster's log up to " + std::to_string(position)
                          + " and the log holds " + std::to_string(stream_last)
                          + ": it is not a copy of this cluster's log");
    auto data = link->message_at_start(o.stream, taken);
    if (!data)
      return make_error(errc::io, "cannot read commit " + std::to_string(taken)
                                    + " of the cluster's log: " + data.error().message);
    auto theirs = codec::decode_commit(*data);
    auto own = local.read_all(global_seq{commits - 1}, 1);
    if (!theirs || !own || own->empty() || !(own->front().body == *theirs))
      return make_error(errc::invalid_argument,
                        "the last commit of this data dir differs from the cluster's log at "
                          + std::to_string(taken) + ": it is not a copy of this cluster's log");
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
    follower.reset();
    for (auto& j : jetstream::close_publishing(link, acks))
      finish(j, make_error(errc::closed, "the log closed before the cluster's log acknowledged "
                                         "the commit (a retry with its command id finds out)"));
    // Appends waiting for the copy; then those queued behind them, and tasks.
    progress.stop(std::nullopt);
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
    for (auto& j : left) {
      if (j.task)
        j.task(false);
      else
        j.done(make_error(errc::closed, "the log is closing"));
    }
  }
};

result<std::unique_ptr<jetstream_event_log>> jetstream_event_log::open(rocksdb_event_log& local,
                                                                       jetstream_log_options o) {
  auto p = std::make_shared<impl>(local, std::move(o));
  auto& opts = p->o;
  auto l = jetstream::link::connect(opts.servers, opts.name, opts.ack_timeout,
                                    p->acks.handler());
  if (!l)
    return l.error();
  p->link = std::move(*l);
  p->acks.open([raw = p.get()](publish_job j, natsMsg* msg, jsPubAck* ack, jsPubAckErr* failure) {
    raw->answered(std::move(j), msg, ack, failure);
  });
  auto stream_last = p->link->ensure_stream(
    {opts.stream, std::string{subjects::log_subjects}, opts.replicas, {}, true});
  if (!stream_last)
    return stream_last.error();
  if (auto checked = p->check_copy(*stream_last); !checked)
    return checked.error();
  auto mine = local.copy_position();
  p->progress.start_at(mine);
  auto follower = jetstream::ordered_copy::start(
    *p->link, opts.stream, std::string{subjects::log_subjects}, mine,
    [raw = p.get()](std::uint64_t seq, std::string subject, std::string data) {
      raw->copy(seq, subject, std::move(data), false);
    });
  if (!follower)
    return follower.error();
  p->follower = std::move(*follower);
  for (unsigned i = 0; i < std::max(1u, opts.publishers); ++i)
    p->publishers.emplace_back([raw = p.get()] { raw->publish_loop(); });
  spdlog::info("log cluster=jetstream stream={} replicas={} copy_from={} stream_last={}",
               opts.stream, opts.replicas, mine, *stream_last);
  return std::unique_ptr<jetstream_event_log>{new jetstream_event_log{std::move(p)}};
}

jetstream_event_log::jetstream_event_log(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

jetstream_event_log::~jetstream_event_log() { impl_->shutdown(); }

status_result jetstream_event_log::catch_up(std::chrono::milliseconds timeout) {
  auto last = impl_->link->last_seq(impl_->o.stream);
  if (!last)
    return last.error();
  if (impl_->progress.wait_for(*last, timeout))
    return ok;
  if (impl_->progress.broken())
    return impl_->copy_error();
  return make_error(errc::io, "the copy holds " + std::to_string(impl_->progress.copied()) + " of "
                                + std::to_string(*last) + " commits after "
                                + std::to_string(timeout.count()) + " ms");
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

void jetstream_event_log::sync_async(std::function<void(std::optional<global_seq>)> done) {
  impl_->run_task([p = impl_, done](bool run) {
    if (!run)
      return done(std::nullopt);
    auto last = p->link->last_seq(p->o.stream);
    if (!last)
      return done(std::nullopt);
    p->progress.when_done(*last, [p, done](bool copied) {
      done(copied ? std::optional<global_seq>{p->local.last_seq()} : std::nullopt);
    });
  });
}
std::unique_ptr<subscription> jetstream_event_log::subscribe(global_seq after, commit_handler on_commit,
                                                             error_handler on_error,
                                                             live_delivery live) {
  return impl_->local.subscribe(after, std::move(on_commit), std::move(on_error), live);
}
status_result jetstream_event_log::save_snapshot(const stream_id& stream, const snapshot& s) {
  return impl_->local.save_snapshot(stream, s);
}
result<std::optional<snapshot>> jetstream_event_log::load_snapshot(const stream_id& stream) {
  return impl_->local.load_snapshot(stream);
}

} // namespace kiln::storage
