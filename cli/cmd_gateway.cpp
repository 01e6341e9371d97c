// `kiln gateway --nats URL[,URL…] --listen HOST:PORT`: a gateway node
// alone: the HTTP API, reaching the cores over NATS. It keeps no state, so
// gateways can be rolled one at a time (SIGTERM drains it).
#include "cli/args.hpp"
#include "cli/config_file.hpp"
#include "cli/artifact_args.hpp"
#include "cli/commands.hpp"
#include "cli/gateway_node.hpp"
#include "cli/node_args.hpp"
#include "cli/version.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace kiln::cli {

int cmd_gateway(int argc, char** argv) {
  args a{argc, argv, 2, {"public-read"}};
  auto known = artifact_options;
  known.insert({"data", "nats", "listen", "public-read", "max-streams", "config", "http-threads"});
  a.allow_only(known);
  load_config_file(a, known, {"public-read"});
  // Only spooled uploads (a local store) and S3's spool live here.
  auto data = a.get_or("data", "./kiln-gateway");
  auto listen = parse_listen(a.get_or("listen", "127.0.0.1:8080"));
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "kiln gateway: %s\n", what.c_str());
    return 1;
  };
  auto http_threads = http_threads_from(a, 1);
  auto gopts = gateway_options_from(a, data);
  if (!gopts)
    return fail(gopts.error().message);
  auto stop_signals = block_stop_signals();
  auto bus = bus_from(a, "kiln-gateway", true);
  if (!bus)
    return fail("--nats: " + bus.error().message);
  auto front = gateway_node::start(**bus, std::move(*gopts), listen, http_threads);
  if (!front)
    return fail(front.error().message);
  auto url = (*front)->url();
  spdlog::info("gateway ready version={} url={}", version, url);
  std::printf("kiln gateway: listening on %s\n", url.c_str());
  std::fflush(stdout);
  auto sig = wait_for_stop(stop_signals);
  spdlog::info("gateway stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*front)->stop();
  spdlog::info("gateway stopped");
  return 0;
}

} // namespace kiln::cli
