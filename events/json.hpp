#pragma once
// JSON renderings of events for people and outside tools (`kiln events`,
// SSE, `kiln.evt.…` subjects). Secret ciphertexts are never rendered.
#include "events/commit.hpp"

#include <string>

namespace kiln {

// One line: {"seq", "stream", "version", "time", "principal", "command_id",
// "correlation_id", "hash", "events": [{"type", "version", "data"}]}.
std::string to_json_line(const logged_commit& c);

// {"type": "RunCompleted", "data": {...}}
std::string to_json(const event& e);

} // namespace kiln
