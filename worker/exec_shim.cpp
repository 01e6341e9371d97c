// `kiln-exec-shim -- PROGRAM ARGS…`: the host executor's reaper, a program
// of its own so that starting it costs little (the kiln binary loads many
// libraries). It runs PROGRAM in its own process group as a child
// subreaper; when PROGRAM ends, or on SIGTERM, it kills every process left
// under it, then exits with PROGRAM's status. A script's processes can
// leave its process group (setsid) and its parent (double fork); as a
// child subreaper the shim inherits every orphan of the tree, so it can
// find and kill all of them by walking its own children until none is left.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <spawn.h>
#include <string>
#include <vector>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

// The PIDs whose parent is this process (from /proc/<pid>/stat).
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  pid_t self = ::getpid();
  DIR* d = ::opendir("/proc");
  if (!d)
    return out;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0)
      continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    std::FILE* f = std::fopen(path, "r");
    if (!f)
      continue;
    char buf[512];
    auto n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    const char* close = std::strrchr(buf, ')');
    char state = 0;
    long ppid = 0;
    if (close && std::sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == self)
      out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

// Kills the main group and every child until this process has none left:
// each round's dead hand their own children to us for the next.
void kill_everything(pid_t group) {
  for (;;) {
    ::kill(-group, SIGKILL);
    // Reap the dead; no child at all (the usual end) needs no /proc walk.
    int st = 0;
    pid_t r = 0;
    while ((r = ::waitpid(-1, &st, WNOHANG)) > 0) {
    }
    if (r < 0 && errno == ECHILD)
      return;
    for (pid_t p : own_children())
      ::kill(p, SIGKILL);
    r = ::waitpid(-1, &st, 0);
    if (r < 0 && errno == ECHILD)
      return;
  }
}

} // namespace

int main(int argc, char** argv) {
  int first = 1;
  while (first < argc && std::string{argv[first]} != "--")
    ++first;
  if (first + 1 >= argc) {
    std::fprintf(stderr, "usage: kiln-exec-shim -- PROGRAM [ARGS…]\n");
    return 2;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the worker
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, SIGINT);
  sigprocmask(SIG_BLOCK, &waited, nullptr);

  // posix_spawn (a vfork) rather than fork: this runs once per run.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  pid_t main_pid = -1;
  int rc = ::posix_spawn(&main_pid, argv[first + 1], nullptr, &attr, argv + first + 1, environ);
  // ETXTBSY: the worker wrote the script with O_CLOEXEC, but a process it
  // was starting for another run at that moment still held the file open
  // until its own exec, a few milliseconds. Wait that out (up to 2 s).
  for (int tries = 0; rc == ETXTBSY && tries < 100; ++tries) {
    ::usleep(20'000);
    rc = ::posix_spawn(&main_pid, argv[first + 1], nullptr, &attr, argv + first + 1, environ);
  }
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::fprintf(stderr, "kiln: cannot run %s: %s\n", argv[first + 1], std::strerror(rc));
    return 127;
  }

  int code = 0;
  for (;;) {
    int sig = 0;
    sigwait(&waited, &sig);
    if (sig != SIGCHLD) {
      code = 128 + SIGKILL;
      break;
    }
    int st = 0;
    pid_t r = 0;
    bool main_done = false;
    while ((r = ::waitpid(-1, &st, WNOHANG)) > 0)
      if (r == main_pid) {
        main_done = true;
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
    if (main_done)
      break;
  }
  kill_everything(main_pid);
  return code;
}
