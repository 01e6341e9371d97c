#pragma once
// The gateway's one way to the core: a JSON request on kiln.cmd.<verb> or
// kiln.qry.<verb> over the bus (actors/core_service.hpp has the wire format).
// Internal to the gateway (it pulls in nlohmann::json).
#include "events/bus.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
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

class core_client {
 public:
  core_client(bus::bus& b, std::chrono::milliseconds timeout) : bus_(b), timeout_(timeout) {}

  // `done` runs on a bus thread: it must not block. A missing core is
  // error "unavailable".
  void command(std::string_view verb, nlohmann::json body, const caller& who, core_callback done,
               std::string_view bytes = {});
  void query(std::string_view verb, nlohmann::json body, const caller& who, core_callback done);

  bus::bus& bus() { return bus_; }

 private:
  void send(std::string subject, std::string data, core_callback done);
  bus::bus& bus_;
  std::chrono::milliseconds timeout_;
};

// The HTTP status for a core's (or the gateway's) error code.
int http_status(std::string_view code);

} // namespace kiln::gateway
