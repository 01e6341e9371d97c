#pragma once
// The cluster's event log (issue 6, DESIGN.md "High availability"): a
// JetStream stream over kiln.es.> holds every commit of the cluster, and
// every core copies it, in the stream's order, into its own RocksDB log,
// from which it serves reads, subscriptions and snapshots. The copy's
// sequence numbers are the stream's and its hash chain is computed as
// commits are copied, so every core's chain is the same.
//
// An append is published to its stream's subject with the stream sequence
// of the aggregate's last commit as the expected last subject sequence: of
// two cores deciding on one aggregate, one wins and the other gets a
// conflict once its copy holds the winner's commit (it then re-reads and
// decides again). A command id is the message id, so a retry that reaches
// another core is a duplicate, not a second commit. An append completes
// once this core's copy holds it: a command's reply reads its own writes.
// It is published on the caller's thread without waiting for the ack, and
// the ack's handler copies it at once when it is next in line, ahead of the
// copy's own delivery. nats.h stays in the .cpp.
#include "storage/event_log.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace kiln::storage {

class rocksdb_event_log;

struct jetstream_log_options {
  std::vector<std::string> servers;  // nats://HOST:PORT, …
  std::string name = "kiln-core";    // as the servers list the connection
  std::string stream = "KILN_LOG";
  int replicas = 1;  // 3 on a 3-server cluster
  std::chrono::milliseconds ack_timeout{5000};
  // Threads for what blocks: looking up the last commit of an aggregate
  // this core has not seen lately, before its append is published.
  unsigned publishers = 8;
};

class jetstream_event_log final : public event_log {
 public:
  // Connects, makes the stream if there is none (file storage, no deletes,
  // no purges) and starts copying what `local` lacks. Errors: unavailable
  // (no server, no JetStream), invalid_argument (`local` holds commits the
  // stream does not: it is not a copy of this cluster's log).
  static result<std::unique_ptr<jetstream_event_log>> open(rocksdb_event_log& local,
                                                           jetstream_log_options options);
  ~jetstream_event_log() override;

  // Blocks until the copy holds every commit the stream held when called.
  status_result catch_up(std::chrono::milliseconds timeout);

  void append_async(append_request req, append_callback done) override;
  result<std::vector<logged_commit>>
  read_stream(const stream_id& stream, stream_version from, std::size_t max) override;
  result<std::vector<logged_commit>> read_all(global_seq after, std::size_t max) override;
  result<stream_version> last_version(const stream_id& stream) override;
  std::optional<append_receipt> find_command(const std::string& command_id) override;
  global_seq last_seq() const override;
  bool replica() const override { return true; }
  void sync_async(std::function<void(std::optional<global_seq>)> done) override;
  std::unique_ptr<subscription>
  subscribe(global_seq after, commit_handler on_commit, error_handler on_error = {},
            live_delivery live = live_delivery::own_thread) override;
  status_result save_snapshot(const stream_id& stream, const snapshot& s) override;
  result<std::optional<snapshot>> load_snapshot(const stream_id& stream) override;

  struct impl;

 private:
  explicit jetstream_event_log(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

} // namespace kiln::storage
