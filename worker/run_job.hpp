#pragma once
// One run, start to end, as the worker and `kiln simulate` both do it: a
// fresh directory, secrets as files, the git checkout, the script under
// an executor with its timeout and cancel, console masking, then the
// artifacts and test results it left. No server here: the caller sends.
#include "worker/executor.hpp"
#include "worker/run_definition.hpp"
#include "worker/test_results.hpp"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kiln::worker {

// Where console bytes go (already masked).
class console_sink {
 public:
  virtual ~console_sink() = default;
  virtual void write(std::string_view bytes) = 0;
};

struct run_settings {
  std::filesystem::path root;  // the run's own directory; its folders are emptied first
  executor* exec = nullptr;    // runs without `container:`
  executor* containers = nullptr;  // runs with one; null: no engine here
  std::string worker_name;
  std::string server_url;  // for H_RUN_URL and the recreate stanza
  // Asked to stop (a cancel, or the worker shutting down); read while the
  // script runs.
  const std::atomic<bool>* stop = nullptr;
  std::string stop_message = "cancelled";
  // persistent-volumes live in volumes/<project>/<name> here, kept between runs.
  std::filesystem::path volumes;
  // shared-volumes this worker offers: name -> host folder (mounted read-only).
  std::map<std::string, std::filesystem::path> shared_volumes;
  // Asked once the run's folders are ready, before anything of the run
  // starts: false, and the run ends there with no status (it is no longer
  // this worker's). Unset: always start.
  std::function<bool()> may_start;
  // Stores a finished script's artifacts before its status line is
  // written: a reason stores them not (the run then FAILS with it), or "".
  // Unset: they stay in $ARCHIVE (kiln simulate).
  std::function<std::string(const std::vector<struct artifact_file>&)> store_artifacts;
};

struct artifact_file {
  std::string path;  // relative to $ARCHIVE, '/'-separated
  std::filesystem::path file;
};

struct run_outcome {
  std::string status;  // PASSED, FAILED, TIMEOUT or CANCELLED; "" if it never started
  int exit_code = 0;
  std::string message;
  std::vector<artifact_file> artifacts;
  std::vector<test_suite> tests;
};

// Empties a run's folders for the next run in the same place, and keeps
// them: cheaper than a new tree. execute_run empties them too.
void clear_run_dirs(const std::filesystem::path& root);

run_outcome execute_run(const run_definition& def, const run_settings& settings,
                        console_sink& console);

// The environment the script sees (jobserv-format.md "Environment").
std::map<std::string, std::string> run_environment(const run_definition& def,
                                                   const run_settings& settings,
                                                   const run_dirs& dirs);

} // namespace kiln::worker
