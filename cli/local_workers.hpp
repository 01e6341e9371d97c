#pragma once
// `kiln up --workers N`: N `kiln worker` child processes against the node's
// own gateway. A single node trusts its own workers: they are registered
// and enlisted through the core directly, each token written into the
// worker's workdir, with the host's name as a tag.
#include "events/result.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace kiln::core {
class core;
}

namespace kiln::cli {

struct local_worker_options {
  unsigned count = 1;
  std::string url;  // the gateway's
  std::filesystem::path data;
  std::string executor;  // empty: the worker's default
  std::string artifact_retry_for;  // seconds; empty: the worker's default
};

class local_workers {
 public:
  static result<std::unique_ptr<local_workers>> start(core::core& domain,
                                                      const local_worker_options& o);
  ~local_workers();
  // SIGTERM (runs finish), then after `grace` a second SIGTERM (runs are
  // killed and reported), then SIGKILL.
  void stop(std::chrono::seconds grace);

  struct impl;

 private:
  explicit local_workers(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::cli
