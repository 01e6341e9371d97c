#pragma once
// The core on the bus: answers `kiln.cmd.<verb>` and `kiln.qry.<verb>`
// requests (queue group "cores", so any number of cores share the work) with
// JSON, the wire format between gateways and cores (docs/api.md), and
// publishes every committed event on `kiln.evt.…` and every console chunk
// on `kiln.log.…` (docs/events.md). Gateways never see the core's types.
#include "actors/core.hpp"
#include "events/bus.hpp"

#include <memory>

namespace kiln::storage {
class event_log;
}

namespace kiln::core {

// Request: {"principal", "command_id", "min_seq", "body": {...}}; console
// bytes follow the JSON after a newline (events/subjects.hpp frame).
// Reply:   {"ok": true, "seq": N} + newline + the result's JSON text, or
//          {"ok": false, "error": "<code>", "message": "<text>"};
//          read_console's reply has its result in the head
//          ({"ok","seq","result"}) and the console bytes after the newline.
class core_service {
 public:
  // `b`, `c` and `log` must outlive the service. `publishing`: whether this
  // core publishes the events (a cluster's leading core does, set_publishing).
  core_service(bus::bus& b, core& c, storage::event_log& log, bool publishing = true);
  ~core_service();  // unsubscribes; a reply still in flight goes out on the bus

  // Starting to publish, it first publishes again the commits of the last
  // few seconds (longer than the lease takes to change hands) that it left
  // to the core leading before: that one may have died before publishing
  // them. KILN_EVENTS keeps each event once; a plain subscriber may see
  // those twice (the message id, or the commit's seq, tells).
  void set_publishing(bool publishing);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
