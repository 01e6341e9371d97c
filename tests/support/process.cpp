#include "support/process.hpp"

#include <cerrno>
#include <dirent.h>
#include <fstream>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kiln::test {

using clock = std::chrono::steady_clock;

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!cond()) {
    if (clock::now() >= deadline)
      return cond();
    std::this_thread::sleep_for(pause);  // a poll interval, not a wait for an outcome
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return true;
}

child_process::child_process(const process_options& opts) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    if (opts.merge_stderr)
      dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : opts.argv)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
}

child_process::~child_process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait(10s);
  }
  if (out_fd_ >= 0)
    close(out_fd_);
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0 || out_fd_ < 0)
      return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return std::nullopt;
    char buf[4096];
    auto n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
      close(out_fd_);
      out_fd_ = -1;
      if (!buffer_.empty()) {
        auto rest = std::move(buffer_);
        buffer_.clear();
        return rest;
      }
      return std::nullopt;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    transcript_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> child_process::wait_for_line(const std::string& needle,
                                                        std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    auto line = read_line(left);
    if (!line)
      return std::nullopt;
    if (line->find(needle) != std::string::npos)
      return line;
  }
}

void child_process::signal(int sig) {
  if (!status_)
    ::kill(pid_, sig);
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  if (status_)
    return status_;
  wait_until(
    [&] {
      int st = 0;
      auto r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_)
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_.has_value();
    },
    timeout);
  return status_;
}

std::pair<int, std::string> run(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) {
  child_process p{{argv, true}};
  while (p.read_line(timeout))
    ;
  auto st = p.wait(timeout);
  return {st.value_or(-1), p.transcript()};
}

} // namespace kiln::test

namespace kiln::test {

int processes_with(const std::string& marker) {
  int n = 0;
  DIR* d = ::opendir("/proc");
  if (!d)
    return 0;
  while (auto* e = ::readdir(d)) {
    std::ifstream in{std::string{"/proc/"} + e->d_name + "/cmdline", std::ios::binary};
    std::string cmd{std::istreambuf_iterator<char>{in}, {}};
    if (cmd.find(marker) != std::string::npos)
      ++n;
  }
  ::closedir(d);
  return n;
}

} // namespace kiln::test
