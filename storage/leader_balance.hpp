#pragma once
// Kiln's JetStream streams led by different servers (issue 6). A stream's
// leader does most of its work: it stores, replicates, acknowledges and
// feeds the cores' copies. JetStream elects leaders at random, so the log,
// the consoles and the events are often led by one server, and their work
// queues behind one another there. On the local cluster, the same 600 runs
// went at 164-171 runs/s with the three led by three servers and 144-150
// with the log and the consoles led by one (docs/performance.md).
#include "events/result.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace kiln::storage {

struct stream_placement {
  std::string stream;
  std::string leader;                // empty while it elects one
  std::vector<std::string> servers;  // the servers holding a replica, the leader's included
};

// The stream to step down: one whose leader leads another of `streams`
// while a server holding a replica of it leads none. None when they are as
// spread as their replicas allow (a one-replica stream never moves).
std::optional<std::string> stream_to_move(const std::vector<stream_placement>& streams);

struct balance_options {
  std::vector<std::string> servers;  // NATS URLs
  std::vector<std::string> streams;  // missing ones are left out
  unsigned max_step_downs = 12;      // JetStream picks the next leader at random
  std::chrono::milliseconds settle{10'000};  // for each new leader
  // No step-down begins after this: a start-up step (deploy/local-cluster)
  // must not hold a loaded cluster's start for minutes of elections.
  std::chrono::milliseconds time_limit{30'000};
};

struct balance_outcome {
  std::vector<stream_placement> streams;  // after
  unsigned step_downs = 0;
  bool spread = false;  // stream_to_move found nothing
};

// Steps streams down (stream_to_move) until they are spread, or
// `max_step_downs` or `time_limit` are spent. A stream stays served through a step-down:
// its replicas elect the next leader, and kiln's appends and copies carry
// on over it, so this can run while the cluster works.
result<balance_outcome> balance_leaders(const balance_options& o);

} // namespace kiln::storage
