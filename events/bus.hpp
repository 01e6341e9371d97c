#pragma once
// The bus (DESIGN.md "The bus"): publish, subscribe with queue groups, and
// request/reply over subjects. Two implementations: in_process_bus (the
// single-node default, `kiln up`) and a NATS one for clusters (issue 6).
// Payloads are bytes, so that both carry the same encoded messages.
#include "events/result.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::bus {

struct message {
  std::string subject;
  std::string reply_to;  // empty unless the sender waits for a reply
  std::string data;
};

// Handlers run on the bus's delivery thread, one message at a time, in the
// order each publisher published: they must not block (post the work, reply
// later with publish(reply_to, …)).
using handler = std::function<void(const message&)>;

// Delivery stops when the handle is destroyed (destruction waits for a
// handler call in progress to return).
class subscription {
 public:
  virtual ~subscription() = default;
};

class bus {
 public:
  virtual ~bus() = default;

  virtual status_result publish(std::string subject, std::string data,
                                std::string reply_to = {}) = 0;

  // A publish that a JetStream stream over the subject keeps once, whoever
  // sends it: `msg_id` is its de-duplication id (every core of a cluster
  // publishes every event). Without JetStream, a plain publish.
  virtual status_result publish_once(std::string subject, std::string data, std::string msg_id) {
    (void)msg_id;
    return publish(std::move(subject), std::move(data));
  }

  // `pattern` may hold NATS wildcards: `*` one token, `>` the rest. With a
  // queue group, each message goes to one member of the group only.
  virtual std::unique_ptr<subscription> subscribe(std::string pattern, handler h,
                                                  std::string queue_group = {}) = 0;

  // Publishes with a fresh reply subject and calls `done` once: with the
  // first reply, or error "no_responders" (nobody subscribes to `subject`),
  // or error "timeout". `done` runs on the delivery thread: it must not block.
  virtual void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
                       std::function<void(result<std::string>)> done) = 0;
};

// NATS subject matching: tokens split at '.', `*` matches one token, `>`
// (last) one or more.
bool subject_matches(std::string_view pattern, std::string_view subject);

// A subject token may not be empty or hold '.', '*', '>' or whitespace.
bool valid_token(std::string_view token);

} // namespace kiln::bus
