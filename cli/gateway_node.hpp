#pragma once
// A gateway node: the HTTP API on a listening address, reaching the core
// over the bus. It holds no state of its own (artifacts live in the store
// it is given). `kiln up` runs one beside a core; `kiln gateway` alone.
#include "cli/node_args.hpp"
#include "events/bus.hpp"
#include "gateway/gateway.hpp"

#include <memory>
#include <string>

namespace kiln::cli {

class gateway_node {
 public:
  // `http_threads`: the HTTP server's event loops. A gateway's handlers
  // never block (one bus request each), so one serves a stateless gateway
  // process best: a second one mostly woke the first (about a third of the
  // context switches a gateway made per run in the local cluster).
  static result<std::unique_ptr<gateway_node>> start(bus::bus& b, gateway::gateway_options o,
                                                     const listen_address& at,
                                                     std::size_t http_threads);
  ~gateway_node();  // stop() if not done
  std::string url() const;
  // Not ready at once, no new connections, long polls and streams told to
  // reconnect, in-flight requests finished (at most 10 s).
  void stop();

  struct impl;

 private:
  explicit gateway_node(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// The gateway's options from the command line (the artifact store too);
// an S3 store that cannot work is an error result.
result<gateway::gateway_options> gateway_options_from(const args& a, const std::filesystem::path& data);
// --http-threads (at least 1), or `fallback`; a usage_error otherwise.
std::size_t http_threads_from(const args& a, std::size_t fallback);

} // namespace kiln::cli
