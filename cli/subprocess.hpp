#pragma once
// Child processes for the benchmarks: the server under test, its baseline
// (nginx) and the load generator (wrk), each a real process.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <sys/types.h>

namespace kiln::cli {

class subprocess {
 public:
  // stdout comes back through a pipe; stderr goes to `stderr_file` when
  // given, else it is inherited. Throws when the program cannot be started.
  // `die_with_parent`: the kernel SIGKILLs the child when this process
  // (the thread that started it) dies, however it dies.
  explicit subprocess(const std::vector<std::string>& argv,
                      const std::filesystem::path& stderr_file = {},
                      bool die_with_parent = false);
  ~subprocess();  // kills (SIGKILL) and reaps a child still running
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Reads stdout until a line holds `needle`; that line, or nullopt at EOF
  // or when the time is up.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout);
  // The rest of stdout, until the child closes it.
  std::string read_to_end();
  void signal(int sig);
  // The exit status (128 + signal when killed).
  int wait();
  // The exit status if the child has ended, without waiting.
  std::optional<int> try_wait();

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string pending_;
  std::optional<int> status_;
};

// Runs to completion: {exit status, stdout}.
std::pair<int, std::string> run_capture(const std::vector<std::string>& argv,
                                        const std::filesystem::path& stderr_file = {});

} // namespace kiln::cli
