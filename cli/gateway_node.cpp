#include "cli/gateway_node.hpp"

#include "cli/args.hpp"
#include "cli/artifact_args.hpp"
#include "gateway/http_server.hpp"

namespace kiln::cli {

struct gateway_node::impl {
  std::unique_ptr<gateway::gateway> front;
  std::unique_ptr<gateway::http_server> server;
  std::string host;
  bool stopped = false;
};

result<gateway::gateway_options> gateway_options_from(const args& a,
                                                      const std::filesystem::path& data) {
  gateway::gateway_options o;
  if (auto store = configure_artifacts(a, data, o); !store)
    return store.error();
  o.public_read = a.flag("public-read");
  o.max_streams = a.get_u64("max-streams", o.max_streams);
  return o;
}

std::size_t http_threads_from(const args& a, std::size_t fallback) {
  auto n = a.get_u64("http-threads", fallback);
  if (n == 0)
    throw usage_error("--http-threads is at least 1");
  return n;
}

result<std::unique_ptr<gateway_node>> gateway_node::start(bus::bus& b, gateway::gateway_options o,
                                                          const listen_address& at,
                                                          std::size_t http_threads) {
  auto i = std::make_unique<impl>();
  i->front = std::make_unique<gateway::gateway>(b, std::move(o));
  auto* front = i->front.get();
  auto server = gateway::http_server::start(
    {.host = at.host, .port = at.port, .threads = http_threads},
    [front](gateway::http_request req, gateway::responder respond) {
      front->handle(std::move(req), std::move(respond));
    },
    [front](std::string_view method, std::string_view target) { return front->plan(method, target); });
  if (!server)
    return server.error();
  i->server = std::move(*server);
  i->host = at.host;
  return std::unique_ptr<gateway_node>{new gateway_node{std::move(i)}};
}

gateway_node::gateway_node(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

gateway_node::~gateway_node() { stop(); }

std::string gateway_node::url() const {
  return "http://" + impl_->host + ":" + std::to_string(impl_->server->port());
}

void gateway_node::stop() {
  if (impl_->stopped)
    return;
  impl_->stopped = true;
  impl_->front->drain();
  impl_->server->stop_accepting();
  impl_->server->stop(std::chrono::seconds{10});
}

} // namespace kiln::cli
