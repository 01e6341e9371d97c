#include "cli/subprocess.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::cli {

subprocess::subprocess(const std::vector<std::string>& argv,
                       const std::filesystem::path& stderr_file, bool die_with_parent) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
  // Built before fork: the child may only call async-signal-safe functions.
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err = -1;
  if (!stderr_file.empty()) {
    err = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err < 0)
      throw std::runtime_error(stderr_file.string() + ": " + std::strerror(errno));
  }
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)  // it died before the line above
        _exit(1);
    }
    dup2(out[1], 1);
    if (err >= 0)
      dup2(err, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  if (err >= 0)
    close(err);
  out_ = out[0];
  if (pid_ < 0) {
    close(out_);
    throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
  }
}

subprocess::~subprocess() {
  if (!status_) {
    kill(pid_, SIGKILL);
    wait();
  }
  if (out_ >= 0)
    close(out_);
}

std::optional<std::string> subprocess::wait_for_line(const std::string& needle,
                                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (std::size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
      auto line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (line.find(needle) != std::string::npos)
        return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    char buf[4096];
    auto n = read(out_, buf, sizeof buf);
    if (n <= 0)
      return std::nullopt;
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string subprocess::read_to_end() {
  std::string text = std::move(pending_);
  pending_.clear();
  char buf[4096];
  for (ssize_t n; (n = read(out_, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

void subprocess::signal(int sig) {
  if (!status_)
    kill(pid_, sig);
}

std::optional<int> subprocess::try_wait() {
  if (status_)
    return status_;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) != pid_)
    return std::nullopt;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return status_;
}

int subprocess::wait() {
  if (status_)
    return *status_;
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return *status_;
}

std::pair<int, std::string> run_capture(const std::vector<std::string>& argv,
                                        const std::filesystem::path& stderr_file) {
  subprocess p{argv, stderr_file};
  auto out = p.read_to_end();
  return {p.wait(), std::move(out)};
}

} // namespace kiln::cli
