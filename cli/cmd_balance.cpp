// `kiln balance --nats URL[,URL…] [--json]`: kiln's JetStream streams (the
// log, the consoles, the events) led by different servers where their
// replicas allow it (storage/leader_balance.hpp). Safe while the cluster
// works; deploy/local-cluster runs it once the cores are up. Exit 0 when
// done, spread or not as far as the replicas allow; 1 when NATS fails.
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "events/subjects.hpp"
#include "storage/jetstream_console_store.hpp"
#include "storage/jetstream_event_log.hpp"
#include "storage/leader_balance.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace kiln::cli {

int cmd_balance(int argc, char** argv) {
  args a{argc, argv, 2, {"json"}};
  a.allow_only({"nats", "json", "max-step-downs"});
  storage::balance_options o;
  o.servers = a.get_list("nats");
  if (o.servers.empty())
    throw usage_error("--nats URL[,URL] is required");
  o.streams = {storage::jetstream_log_options{}.stream, storage::jetstream_console_options{}.stream,
               std::string{subjects::events_stream}};
  o.max_step_downs = static_cast<unsigned>(a.get_u64("max-step-downs", o.max_step_downs));
  auto out = storage::balance_leaders(o);
  if (!out) {
    std::fprintf(stderr, "kiln balance: %s\n", out.error().message.c_str());
    return 1;
  }
  auto figures = nlohmann::json{{"spread", out->spread}, {"step_downs", out->step_downs}};
  for (auto& s : out->streams) {
    std::string servers;
    for (auto& name : s.servers)
      servers += (servers.empty() ? "" : ",") + name;
    std::printf("stream=%s leader=%s servers=%s\n", s.stream.c_str(), s.leader.c_str(),
                servers.c_str());
    figures["leaders"][s.stream] = s.leader;
  }
  std::printf("spread=%s step_downs=%u\n", out->spread ? "true" : "false", out->step_downs);
  if (a.has("json"))
    std::printf("%s\n", figures.dump().c_str());
  return 0;
}

} // namespace kiln::cli
