#pragma once
// A core node: the event log and secret key under a data dir, the domain
// core answering on the bus, and its helpers (git poller, notifier,
// console archiver, retention sweeper). `kiln up` runs one beside a
// gateway; `kiln core` runs one alone on NATS.
#include "actors/notifier.hpp"
#include "events/bus.hpp"
#include "events/result.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::gateway {
class artifact_store;
}
namespace kiln::core {
class core;
}

namespace kiln::cli {

class args;

struct core_node_options {
  std::filesystem::path data;
  std::chrono::seconds worker_timeout{90};
  std::chrono::seconds retention_every{600};
  // On NATS: how long the KILN_EVENTS JetStream stream keeps events.
  std::chrono::hours event_retention{168};
  core::notifier_options notify;
  std::shared_ptr<gateway::artifact_store> store;  // what retention and console archives use
  // `kiln core`: the cluster's log and consoles are JetStream streams on
  // these servers, copied into the data dir. Empty: the data dir's own log.
  std::vector<std::string> cluster;
  int log_replicas = 1;
  std::chrono::hours console_retention{24};
};

// The options of a core node from the command line (throws usage_error).
core_node_options core_node_options_from(const args& a, const std::filesystem::path& data,
                                         std::shared_ptr<gateway::artifact_store> store);

// `kiln core`'s cluster options: --nats, --log-replicas, --console-retention-hours.
void cluster_options_from(const args& a, core_node_options& o);

class core_node {
 public:
  // Opens the log, starts the core and answers on `b` (which must outlive
  // the node); the message of an error says what failed.
  static result<std::unique_ptr<core_node>> start(bus::bus& b, core_node_options o);
  ~core_node();  // stops, in order: helpers, service, core, log

  // The helpers that act on their own; `public_url` goes in the links of
  // notifications (unless --public-url said otherwise).
  void start_helpers(const std::string& public_url);

  core::core& domain();
  std::filesystem::path admin_token_file() const;
  std::uint64_t last_seq() const;

  struct impl;

 private:
  explicit core_node(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::cli
