#pragma once
// `kiln worker`: registers with the server (its token kept in the workdir),
// waits to be enlisted, long-polls check-in, runs what it is handed up to
// its concurrency, streams each run's console, uploads its artifacts and
// test results and reports how it ended. Check-ins go on while runs do:
// they are the heartbeat, and they carry cancels.
#include "events/result.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::worker {

struct worker_options {
  std::vector<std::string> servers;  // tried in turn
  std::string name;
  std::vector<std::string> tags;
  unsigned concurrency = 1;
  std::filesystem::path workdir;
  std::string executor;  // bwrap, host, podman, docker; empty: bwrap where it works
  std::filesystem::path shim_program;  // kiln-exec-shim, for the host executor
  std::string ca_file;
  std::string version;
  std::uint64_t min_free_disk_mb = 256;  // below this, no new runs
  unsigned poll_wait_s = 20;
  // How long an artifact upload the server cannot store (5xx, no answer)
  // is retried before the run FAILS with the storage error in its console.
  unsigned artifact_retry_s = 300;
  std::map<std::string, std::filesystem::path> shared_volumes;  // offered to runs, read-only
};

class worker {
 public:
  // Checks the executor and the workdir; does not contact the server yet.
  static result<std::unique_ptr<worker>> make(worker_options options);
  ~worker();

  // Until stopped and every run has been reported; 0, or 1 when the server
  // refused this worker (deleted, bad token).
  int run();
  // The first SIGTERM: no new runs; running ones finish and are reported.
  void drain();
  // The second: running ones are killed and reported CANCELLED.
  void kill_runs();

  struct impl;

 private:
  explicit worker(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// The token file a worker keeps in its workdir; `kiln up` writes it for
// the workers it starts, so they need not register.
std::filesystem::path token_file(const std::filesystem::path& workdir);
// Writes it there (0600, synced, then renamed into place).
status_result save_token(const std::filesystem::path& workdir, const std::string& token);

} // namespace kiln::worker
