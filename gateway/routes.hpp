#pragma once
// The one table of every HTTP route the gateway serves.
#include "gateway/http_server.hpp"

#include <atomic>

namespace kiln::gateway {

struct gateway_state {
  std::atomic<bool> draining{false};  // /readyz says 503 once set
};

// The gateway's request handler. Until the API lands (issue 4) every /v1
// route answers 501 with a JSON error that says so.
request_handler make_router(gateway_state& state);

} // namespace kiln::gateway
