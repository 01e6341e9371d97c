#include "gateway/routes.hpp"

#include <string_view>

namespace kiln::gateway {

namespace {

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

http_response healthz() { return {200, "application/json", "{\"status\":\"ok\"}\n", {}}; }

http_response readyz(const gateway_state& state) {
  if (state.draining)
    return json_error(503, "draining", "this node is shutting down; use another");
  return {200, "application/json", "{\"status\":\"ready\"}\n", {}};
}

} // namespace

request_handler make_router(gateway_state& state) {
  return [&state](http_request req, responder respond) {
    auto path = path_of(req.target);
    if (req.method != "GET" && (path == "/healthz" || path == "/readyz"))
      return respond(json_error(405, "method_not_allowed", "use GET"));
    if (path == "/healthz")
      return respond(healthz());
    if (path == "/readyz")
      return respond(readyz(state));
    if (path.starts_with("/v1/") || path == "/v1" || path == "/metrics")
      return respond(json_error(501, "not_implemented",
                                "the HTTP API is not built yet: it arrives with the gateway "
                                "(issue 4); this server answers /healthz and /readyz only"));
    respond(json_error(404, "not_found", "no route for " + std::string{path}));
  };
}

} // namespace kiln::gateway
