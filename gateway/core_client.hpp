#pragma once
// The gateway's one way to the core: a JSON request on kiln.cmd.<verb> or
// kiln.qry.<verb> over the bus (actors/core_service.hpp has the wire format).
// Internal to the gateway (it pulls in nlohmann::json).
#include "events/bus.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kiln::gateway {

struct core_answer {
  std::uint64_t seq = 0;
  std::string payload;  // the result's JSON text, or a console read's bytes

  // The result as JSON, parsed on first use: most reads only pass the
  // payload on to their client.
  const nlohmann::json& result() const;
  void set_result(nlohmann::json r) { parsed_ = std::move(r); }

 private:
  mutable std::optional<nlohmann::json> parsed_;
};
using core_callback = std::function<void(result<core_answer>)>;

struct caller {
  std::string principal = "anonymous";
  std::string command_id;  // the Idempotency-Key, if any
  std::uint64_t min_seq = 0;
};

// A request no core took (NATS: no responders, as while every core
// restarts) is sent again, after 50 ms, then twice as long each time (at
// most 1 s), until `timeout` has passed. One no core answered in time is
// sent again only where repeating it is safe: a query, or a command with a
// command id (an Idempotency-Key); each try of those waits at most half of
// `timeout`, so that a retry reaches a core that is up while a client
// still waits.
class core_client {
 public:
  core_client(bus::bus& b, std::chrono::milliseconds timeout);
  ~core_client();  // retries still waiting fail "unavailable"

  // `done` runs on a bus thread (or the retry timer's): it must not block.
  // No core answering in time is error "unavailable".
  void command(std::string_view verb, nlohmann::json body, const caller& who, core_callback done,
               std::string_view bytes = {});
  void query(std::string_view verb, nlohmann::json body, const caller& who, core_callback done);

  bus::bus& bus();

  struct shared;

 private:
  void send(std::string subject, std::string data, bool repeatable, core_callback done);
  std::shared_ptr<shared> s_;
};

// The HTTP status for a core's (or the gateway's) error code.
int http_status(std::string_view code);

} // namespace kiln::gateway
