#pragma once
// What the cluster's log and the cluster's consoles share (issue 6): a NATS
// connection with a JetStream context, a stream made if missing, an ordered
// copy of a stream into this core, and the waits for that copy. Internal to
// storage/: it includes nats.h, so only their .cpp files include it.
#include "events/nats_message_bin.hpp"
#include "events/result.hpp"
#include "storage/leader_balance.hpp"

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::storage::jetstream {

std::string status_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));

// For js_PublishMsgAsync: the handler of every ack or failure, and whether
// it shares one delivery thread with the link's subscriptions.
struct async_acks {
  jsPubAckHandler handler = nullptr;
  void* closure = nullptr;
  bool one_delivery_thread = false;
};

// Messages published with js_PublishMsgAsync that wait for their acks,
// found again by the message the ack brings back. A publisher adds its own
// before publishing (the ack may come before js_PublishMsgAsync returns).
// `on_answer` runs on NATS's delivery thread; close() waits for a call in
// progress and turns later ones away (the library may deliver one while the
// connection closes), and hands back what was never answered.
template <class T>
class pending_acks {
 public:
  using answer_fn = std::function<void(T, natsMsg*, jsPubAck*, jsPubAckErr*)>;

  // For link::connect; `this` must outlive the connection.
  async_acks handler() { return {&on_ack, this, true}; }
  void open(answer_fn on_answer) {
    std::lock_guard lock{gate_};
    answer_ = std::move(on_answer);
  }
  void add(natsMsg* msg, T value) {
    std::lock_guard lock{mu_};
    by_msg_.emplace(msg, std::move(value));
  }
  std::optional<T> take(natsMsg* msg) {
    std::lock_guard lock{mu_};
    auto it = by_msg_.find(msg);
    if (it == by_msg_.end())
      return std::nullopt;
    auto value = std::move(it->second);
    by_msg_.erase(it);
    return value;
  }
  std::vector<T> close() {
    {
      std::lock_guard lock{gate_};
      answer_ = nullptr;
    }
    std::vector<T> left;
    std::lock_guard lock{mu_};
    for (auto& [msg, value] : by_msg_)
      left.push_back(std::move(value));
    by_msg_.clear();
    return left;
  }

 private:
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* failure, void* closure) {
    auto& self = *static_cast<pending_acks*>(closure);
    {
      std::lock_guard lock{self.gate_};
      if (self.answer_)
        if (auto value = self.take(msg))
          self.answer_(std::move(*value), msg, ack, failure);
    }
    bus::dispose(msg);
  }

  std::mutex gate_, mu_;
  answer_fn answer_;
  std::unordered_map<natsMsg*, T> by_msg_;
};

// One connection and its JetStream context; closed when destroyed.
class link {
 public:
  // Error "unavailable" when no server answers or JetStream is off.
  static result<std::unique_ptr<link>> connect(const std::vector<std::string>& servers,
                                               const std::string& name,
                                               std::chrono::milliseconds ack_timeout,
                                               async_acks acks = {});
  ~link();
  jsCtx* js() const { return js_; }
  natsConnection* conn() const { return conn_; }

  struct stream_spec {
    std::string name;
    std::string subjects;
    int replicas = 1;
    std::chrono::seconds max_age{0};  // 0: kept for ever
    bool deny_delete = false;         // and purge
  };
  // Makes the stream if there is none; its last sequence.
  result<std::uint64_t> ensure_stream(const stream_spec& spec);
  result<std::uint64_t> last_seq(const std::string& stream);
  // Who leads the stream and which servers hold it; error "not_found" for
  // a stream JetStream does not have.
  result<stream_placement> placement(const std::string& stream);
  // Asks the stream's leader to step down: its replicas elect another.
  status_result step_down(const std::string& stream);
  // The data of the stream's message at `seq`, for a start-up check: waits,
  // as ensure_stream does, for a JetStream cluster still electing.
  result<std::string> message_at_start(const std::string& stream, std::uint64_t seq);

 private:
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Closes `l`, its acks turned away first; hands back what was never
// acknowledged (it may or may not be in the stream).
template <class T>
std::vector<T> close_publishing(std::unique_ptr<link>& l, pending_acks<T>& acks) {
  auto left = acks.close();
  l.reset();
  for (auto& v : acks.close())  // a publish that raced the close
    left.push_back(std::move(v));
  return left;
}

// A stream's messages after a sequence, in order, to `on_message(seq, subject, data)`
// on NATS's delivery thread (an ordered consumer: it restarts itself after
// a reconnect, from where it was). Destruction waits for a call in progress
// and stops later ones.
class ordered_copy {
 public:
  using handler = std::function<void(std::uint64_t seq, std::string subject, std::string data)>;
  static result<std::unique_ptr<ordered_copy>> start(link& l, const std::string& stream,
                                                     const std::string& subjects,
                                                     std::uint64_t after, handler on_message);
  ~ordered_copy();

  struct box;

 private:
  ordered_copy(natsConnection* conn, natsSubscription* sub, std::unique_ptr<box> b);
  natsConnection* conn_;
  natsSubscription* sub_;
  std::unique_ptr<box> box_;
};

// How far this core's copy of a stream has come, and who waits for it.
class copy_progress {
 public:
  // Before the copy starts: what the copy already holds.
  void start_at(std::uint64_t done) {
    std::lock_guard lock{mu_};
    requested_ = done_ = done;
  }

  // The next message to copy, if it is after the last: false for one seen
  // before (skip it). (Sequences may skip: a stream's messages can expire.)
  bool take(std::uint64_t seq);
  // `seq` is copied: wakes its waiters.
  void done(std::uint64_t seq);
  // The copy cannot go on (or is closing): every waiter is told false.
  void stop(std::optional<error> why);
  // `f(true)` once `seq` is copied, `f(false)` if it never will be.
  void when_done(std::uint64_t seq, std::function<void(bool)> f);
  bool wait_for(std::uint64_t seq, std::chrono::milliseconds timeout);
  std::uint64_t copied() const;
  // The last message handed to the copy (copied, or on its way).
  std::uint64_t taken() const;
  std::optional<error> broken() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t requested_ = 0, done_ = 0;
  std::optional<error> broken_;
  bool stopped_ = false;
  std::multimap<std::uint64_t, std::function<void(bool)>> waiters_;
};

// What the copy made of its most recent messages, by stream sequence, for
// the appenders waiting on them (the oldest are forgotten past `keep`).
template <class T>
class recent_outcomes {
 public:
  explicit recent_outcomes(std::size_t keep) : keep_(keep) {}
  void put(std::uint64_t seq, T outcome) {
    std::lock_guard lock{mu_};
    by_seq_.insert_or_assign(seq, std::move(outcome));
    while (by_seq_.size() > keep_)
      by_seq_.erase(by_seq_.begin());
  }
  std::optional<T> get(std::uint64_t seq) const {
    std::lock_guard lock{mu_};
    auto it = by_seq_.find(seq);
    if (it == by_seq_.end())
      return std::nullopt;
    return it->second;
  }

 private:
  std::size_t keep_;
  mutable std::mutex mu_;
  std::map<std::uint64_t, T> by_seq_;
};

} // namespace kiln::storage::jetstream
