#pragma once
// A real child process with its stdout (and stderr) on pipes; killed and
// reaped when the handle goes away.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <sys/types.h>

namespace kiln::test {

using namespace std::chrono_literals;

// Polls `cond` until it holds or `timeout` passes; no fixed sleeps.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 20s);

struct process_options {
  std::vector<std::string> argv;
  bool merge_stderr = false;  // stderr into the stdout pipe (else inherited)
};

class child_process {
 public:
  explicit child_process(const process_options& opts);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  // The next line of output (without '\n'), or nullopt at EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 20s);
  // Reads lines until one contains `needle`; returns it.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout = 20s);
  void signal(int sig);
  // Waits for exit; the exit status (128+signal when killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = 20s);
  // All output read so far.
  const std::string& transcript() const { return transcript_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::string transcript_;
  std::optional<int> status_;
};

// How many processes have `marker` in their command line (from /proc).
int processes_with(const std::string& marker);

// Runs to completion and returns {exit status, stdout+stderr}.
std::pair<int, std::string> run(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = 60s);

} // namespace kiln::test
