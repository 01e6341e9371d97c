#pragma once
// The core on the bus: answers `kiln.cmd.<verb>` and `kiln.qry.<verb>`
// requests (queue group "cores", so any number of cores share the work) with
// JSON, the wire format between gateways and cores (docs/api.md). Gateways
// never see the core's types: they send JSON and relay JSON.
#include "actors/core.hpp"
#include "events/bus.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace kiln::core {

// Request: {"principal", "command_id", "min_seq", "body": {...}}.
// Reply:   {"ok": true, "seq": N, "result": {...}} or
//          {"ok": false, "error": "<code>", "message": "<text>"}.
class core_service {
 public:
  core_service(bus::bus& b, core& c);
  ~core_service();  // unsubscribes; replies still in flight are dropped

  // One request's handling, without the bus (tests, and the single place
  // that decodes and encodes): `respond` is called exactly once.
  static void handle(core& c, std::string_view subject, std::string_view data,
                     std::function<void(std::string)> respond);

 private:
  std::unique_ptr<bus::subscription> commands_;
  std::unique_ptr<bus::subscription> queries_;
};

} // namespace kiln::core
