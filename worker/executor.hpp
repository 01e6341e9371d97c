#pragma once
// Where a run's script executes: bare on the host (in its own process
// group, under a reaper that kills the whole tree), in a bubblewrap sandbox,
// or in a container (podman or docker). One interface, so that the run
// itself (run_job) does not care.
#include "events/result.hpp"
#include "worker/run_definition.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <sys/types.h>

namespace kiln::worker {

// The host directories a run may write, plus its read-only secrets. Inside
// a sandbox they keep the same paths, so $ARCHIVE means the same thing
// under every executor.
struct run_dirs {
  std::filesystem::path root;  // holds all of the below
  std::filesystem::path workspace, archive, secrets, tmp;
  std::filesystem::path bin;  // the script and kiln's helpers, read-only to the run
};

// A host folder mounted into the run (persistent and shared volumes).
struct bind_mount {
  std::filesystem::path host;
  std::filesystem::path inside;  // absolute
  bool read_only = false;
};

struct launch_request {
  std::filesystem::path script;  // executable, inside the workspace dirs
  std::map<std::string, std::string> env;
  run_dirs dirs;
  bool network = false;
  const container_spec* container = nullptr;  // set: a container engine runs it
  std::string name;  // unique per launch: names containers
  std::vector<bind_mount> binds;  // the host executor refuses these
};

// A launched script and every process it starts.
class process_tree {
 public:
  virtual ~process_tree() = default;
  // stdout and stderr, interleaved as written; EOF once the tree is gone.
  virtual int output_fd() const = 0;
  // Kills every process of the run (idempotent, does not wait).
  virtual void kill() = 0;
  // Waits for the script: its exit code, or 128 + the signal that ended it.
  virtual int wait() = 0;
};

class executor {
 public:
  virtual ~executor() = default;
  virtual std::string name() const = 0;
  virtual result<std::unique_ptr<process_tree>> launch(const launch_request& r) = 0;
};

struct executor_options {
  // `kiln-exec-shim` (worker/exec_shim.cpp), installed beside `kiln`: the
  // host executor runs scripts under it.
  std::filesystem::path shim_program;
};

// A process on the host in its own process group, killed with it: the
// git checkout before the script.
result<std::unique_ptr<process_tree>> spawn_plain(std::vector<std::string> argv,
                                                  const std::map<std::string, std::string>& env,
                                                  const std::filesystem::path& cwd);

// "bwrap", "host", "podman" or "docker"; an error when the tool is missing.
result<std::unique_ptr<executor>> make_executor(const std::string& kind,
                                                const executor_options& options);
// "bwrap" where bubblewrap works here, else "host".
std::string default_executor_kind();
// The first container engine that answers here ("podman", "docker"), or "".
std::string probe_container_engine();

// The argv each executor runs; public for tests.
std::vector<std::string> bwrap_argv(const launch_request& r);
std::vector<std::string> container_argv(const std::string& engine, const launch_request& r);


} // namespace kiln::worker
