#pragma once
// The single-node bus: subjects, queue groups and request/reply inside one
// process, delivered by one thread, with the semantics of NATS core (at most
// once, no persistence) so that code written against it runs on NATS too.
#include "events/bus.hpp"

#include <memory>

namespace kiln::bus {

class in_process_bus final : public bus {
 public:
  in_process_bus();
  ~in_process_bus() override;  // stops delivery; pending requests fail "closed"

  status_result publish(std::string subject, std::string data, std::string reply_to = {}) override;
  std::unique_ptr<subscription> subscribe(std::string pattern, handler h,
                                          std::string queue_group = {}) override;
  void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
               std::function<void(result<std::string>)> done) override;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

} // namespace kiln::bus
