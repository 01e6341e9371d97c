// `kiln up`: the single-node server: a core node (the event log, the domain
// core and its helpers), a gateway node (the HTTP API) on the in-process
// bus (or NATS with --nats), and N local workers as child processes.
#include "cli/args.hpp"
#include "cli/artifact_args.hpp"
#include "cli/commands.hpp"
#include "cli/core_node.hpp"
#include "cli/gateway_node.hpp"
#include "cli/config_file.hpp"
#include "cli/local_workers.hpp"
#include "cli/node_args.hpp"
#include "cli/version.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace kiln::cli {

int cmd_up(int argc, char** argv) {
  args a{argc, argv, 2, {"public-read"}};
  auto known = artifact_options;
  known.insert({"data", "listen", "workers", "executor", "public-read", "config", "max-streams", "http-threads",
                "worker-timeout", "public-url", "smtp", "smtp-from", "smtp-user", "github-api",
                "gitlab-api", "notify-retry", "retention-interval", "event-retention-hours", "nats",
                "artifact-retry-for"});
  a.allow_only(known);
  load_config_file(a, known, {"public-read"});
  auto data = a.get_or("data", "./kiln-data");
  auto listen = parse_listen(a.get_or("listen", "127.0.0.1:8080"));
  auto worker_count = a.get_u64("workers", 1);
  auto executor = a.get_or("executor", "");
  auto artifact_retry_for =
    a.has("artifact-retry-for") ? std::to_string(a.get_u64("artifact-retry-for", 0)) : "";
  if (!executor.empty() && executor != "bwrap" && executor != "host" && executor != "podman")
    throw usage_error("--executor is bwrap, host or podman, not '" + executor + "'");
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "kiln up: %s\n", what.c_str());
    return 1;
  };
  // Two: a single node's one HTTP server takes every client (a cluster
  // adds gateways instead).
  auto http_threads = http_threads_from(a, 2);
  auto gopts = gateway_options_from(a, data);
  if (!gopts)
    return fail(gopts.error().message);
  auto copts = core_node_options_from(a, data, gopts->store);

  // Signals are taken by wait_for_stop; block them before any thread starts.
  auto stop_signals = block_stop_signals();
  // Declared first, destroyed last: the core and the gateway subscribe on it.
  auto bus = bus_from(a, "kiln-up", false);
  if (!bus)
    return fail("--nats: " + bus.error().message);
  auto node = core_node::start(**bus, std::move(copts));
  if (!node)
    return fail(node.error().message);
  auto front = gateway_node::start(**bus, std::move(*gopts), listen, http_threads);
  if (!front)
    return fail(front.error().message);
  auto url = (*front)->url();
  (*node)->start_helpers(url);
  spdlog::info("up ready version={} url={} data={} last_seq={}", version, url, data,
               (*node)->last_seq());
  std::printf("kiln up: listening on %s (data in %s)\n"
              "kiln up: admin token in %s\n",
              url.c_str(), data.c_str(), (*node)->admin_token_file().c_str());
  std::fflush(stdout);

  std::unique_ptr<local_workers> workers;
  if (worker_count > 0) {
    auto w = local_workers::start((*node)->domain(),
                                  {static_cast<unsigned>(worker_count), url, data, executor,
                                   artifact_retry_for});
    if (!w)
      spdlog::error("up workers=failed message=\"{}\"", w.error().message);
    else
      workers = std::move(*w);
  }

  auto sig = wait_for_stop(stop_signals);
  spdlog::info("up stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Local workers first, while the gateway still takes their reports.
  if (workers)
    workers->stop(std::chrono::seconds{10});
  (*front)->stop();
  node->reset();
  spdlog::info("up stopped");
  return 0;
}

} // namespace kiln::cli
