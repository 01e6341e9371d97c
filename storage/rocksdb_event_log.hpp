#pragma once
// The event log on RocksDB (docs/architecture.md draws its key layout).
// One writer thread gathers every pending append into one synced WriteBatch:
// concurrent appenders share one sync (group commit).
#include "storage/console_store.hpp"
#include "storage/event_log.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>

namespace kiln::storage {

struct rocksdb_log_options {
  std::filesystem::path dir;
  // read_only opens beside a running server (RocksDB's secondary instance):
  // reads see the primary's commits after refresh(); appends fail.
  bool read_only = false;
  std::size_t max_batch = 1024;  // commits per synced write
  // false: writes are not synced. For a core's copy of the cluster's log,
  // which JetStream keeps durable: a copy that lost its last commits in a
  // crash takes them from the stream again.
  bool sync = true;
  // An unsynced log's WAL reaches its file this often (not on every write),
  // and a crash loses at most this much of its tail.
  std::chrono::milliseconds wal_flush_interval{50};
};

class rocksdb_event_log final : public event_log, public console_store {
 public:
  // Opens or creates the log. Errors: io (cannot open), corrupt (the last
  // record does not decode).
  static result<std::unique_ptr<rocksdb_event_log>> open(const rocksdb_log_options& opts);
  ~rocksdb_event_log() override;

  void append_async(append_request req, append_callback done) override;
  // How a core copies the cluster's log, in the stream's order: a commit
  // another log decided, by its encoded bytes and its stream sequence. It
  // takes this log's next sequence and the hash chain goes on; command ids
  // are recorded but never de-duplicate it. A commit whose version is taken
  // already is left out with error conflict: every copy leaves out the same
  // ones, so every copy holds the same commits. The stream sequence copied
  // up to is written with the commits (copy_position()). Written on the
  // caller's thread: a copy has one writer, and a hand-off to the writer
  // thread was a third of the time an append waits for its copy.
  result<append_receipt> replicate(std::uint64_t source_seq, std::string commit_bytes);
  // The last stream sequence copied (taken or left out), and that of the
  // last commit taken; 0 for a log that is not a copy.
  std::uint64_t copy_position() const;
  std::uint64_t copy_taken() const;
  result<std::vector<logged_commit>>
  read_stream(const stream_id& stream, stream_version from, std::size_t max) override;
  result<std::vector<logged_commit>> read_all(global_seq after, std::size_t max) override;
  result<stream_version> last_version(const stream_id& stream) override;
  global_seq last_seq() const override;
  std::optional<append_receipt> find_command(const std::string& command_id) override;
  std::unique_ptr<subscription>
  subscribe(global_seq after, commit_handler on_commit, error_handler on_error = {},
            live_delivery live = live_delivery::own_thread) override;
  status_result save_snapshot(const stream_id& stream, const snapshot& s) override;
  result<std::optional<snapshot>> load_snapshot(const stream_id& stream) override;

  result<console_append> append_console(const std::string& run, std::uint64_t offset,
                                        std::string_view bytes) override;
  result<std::string> read_console(const std::string& run, std::uint64_t offset,
                                   std::size_t max) override;
  result<std::uint64_t> console_size(const std::string& run) override;

  // Raw stored records in key order, for the auditor and benchmarks. With
  // verify_checksums off, RocksDB's block checksums are skipped so that the
  // hash chain is the judge of every byte. fn returns false to stop.
  status_result scan_records(global_seq after, bool verify_checksums,
                             const std::function<bool(std::uint64_t, std::string_view)>& fn);

  struct write_stats {
    std::uint64_t commits = 0;  // durable appends
    std::uint64_t syncs = 0;    // synced writes that carried them
  };
  write_stats stats() const;

  // Read-only mode: catch up with the primary's latest commits.
  status_result refresh();

  // Finishes pending appends, then stops; flushes memtables so that the next
  // open need not replay the WAL. Also done by the destructor.
  void close();

  struct impl;

 private:
  explicit rocksdb_event_log(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

} // namespace kiln::storage
