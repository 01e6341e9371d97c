// `kiln core --nats URL[,URL…] --data DIR`: a core node alone: the event
// log, the domain core and its helpers, answering gateways over NATS.
// Several cores share the cluster's log, a JetStream stream (its replicas:
// --log-replicas); each keeps its own copy of it in DIR.
#include "cli/args.hpp"
#include "cli/config_file.hpp"
#include "cli/artifact_args.hpp"
#include "cli/commands.hpp"
#include "cli/core_node.hpp"
#include "cli/node_args.hpp"
#include "cli/version.hpp"
#include "gateway/artifact_store.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace kiln::cli {

int cmd_core(int argc, char** argv) {
  args a{argc, argv, 2};
  auto known = artifact_options;
  known.insert({"data", "nats", "worker-timeout", "public-url", "smtp", "smtp-from", "smtp-user",
                "github-api", "gitlab-api", "notify-retry", "retention-interval", "event-retention-hours", "config",
                "log-replicas", "console-retention-hours"});
  a.allow_only(known);
  load_config_file(a, known);
  auto data = a.get_or("data", "./kiln-data");
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "kiln core: %s\n", what.c_str());
    return 1;
  };
  // The store the gateways write to: retention and console archives use it.
  gateway::gateway_options store;
  if (auto ok = configure_artifacts(a, data, store); !ok)
    return fail(ok.error().message);
  auto copts = core_node_options_from(a, data, store.store);
  cluster_options_from(a, copts);
  auto stop_signals = block_stop_signals();
  auto bus = bus_from(a, "kiln-core", true);
  if (!bus)
    return fail("--nats: " + bus.error().message);
  auto node = core_node::start(**bus, std::move(copts));
  if (!node)
    return fail(node.error().message);
  (*node)->start_helpers(a.get_or("public-url", ""));
  spdlog::info("core ready version={} data={} last_seq={}", version, data, (*node)->last_seq());
  std::printf("kiln core: ready on %s (data in %s)\n"
              "kiln core: admin token in %s\n",
              a.get_or("nats", "").c_str(), data.c_str(), (*node)->admin_token_file().c_str());
  std::fflush(stdout);
  auto sig = wait_for_stop(stop_signals);
  spdlog::info("core stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  node->reset();
  spdlog::info("core stopped");
  return 0;
}

} // namespace kiln::cli
