#pragma once
// The bus on NATS (issue 6): the same interface as in_process_bus, for
// nodes of a cluster. Publish, subscribe (with queue groups), request/reply
// with deadlines over one inbox subscription per connection; reconnects
// with backoff across a list of servers; drains on destruction. nats.h
// stays in the .cpp.
#include "events/bus.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace kiln::bus {

struct nats_options {
  std::vector<std::string> servers;  // "nats://127.0.0.1:4222", …
  std::string name = "kiln";         // as the server lists the connection
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_wait{250};
  int max_reconnect = -1;  // -1: forever
  std::chrono::milliseconds drain_timeout{5000};
};

class nats_bus final : public bus {
 public:
  // Error "unavailable" when no server answers.
  static result<std::unique_ptr<nats_bus>> connect(nats_options options);
  ~nats_bus() override;  // drains: queued messages are sent and handled first

  status_result publish(std::string subject, std::string data, std::string reply_to = {}) override;
  status_result publish_once(std::string subject, std::string data, std::string msg_id) override;
  std::unique_ptr<subscription> subscribe(std::string pattern, handler h,
                                          std::string queue_group = {}) override;
  void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
               std::function<void(result<std::string>)> done) override;

  // A JetStream stream `name` keeping what is published on `subjects` (file
  // storage, `replicas` copies, kept for `max_age`), made or updated: what
  // durable consumers outside kiln resume from. Error "unavailable" when the
  // servers have no JetStream.
  status_result keep_stream(const std::string& name, const std::string& subjects,
                            std::chrono::seconds max_age, int replicas = 1);

  struct impl;

 private:
  explicit nats_bus(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::bus
