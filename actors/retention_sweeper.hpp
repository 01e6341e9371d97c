#pragma once
// The retention sweeper, beside a core: every interval it asks the core
// which runs' artifacts the projects' retention policies expire
// (retention.hpp), deletes them from the artifact store, and then records
// RunArtifactsExpired. Deleting first means a crash in between deletes
// again (harmlessly) rather than leaving objects nobody will delete.
#include "events/result.hpp"
#include "actors/read_model.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace kiln::core {

class core;

// Deletes one artifact (`path` of `run`); a missing one is no error.
using artifact_remover = std::function<status_result(const domain::run_key& run, const std::string& path)>;

class retention_sweeper {
 public:
  retention_sweeper(core& c, artifact_remover remove, std::chrono::milliseconds interval);
  ~retention_sweeper();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
