#include "worker/executor.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kiln::worker {

namespace fs = std::filesystem;

namespace {

struct spawned {
  pid_t pid = -1;
  int out = -1;  // the read end of the child's stdout + stderr
};

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn, not fork: the worker is multi-threaded. The child gets a
// clean signal mask (the CLI blocks SIGTERM for sigwait), stdin from
// /dev/null and its own process group.
result<spawned> spawn(std::vector<std::string> argv, const std::map<std::string, std::string>* env,
                      const fs::path& cwd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return error{"io", std::string{"pipe: "} + std::strerror(errno)};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  if (!cwd.empty())
    posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
                                    | POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> env_strings;
  if (env)
    for (auto& [k, v] : *env)
      env_strings.push_back(k + "=" + v);
  auto args = c_strings(argv);
  auto envp = c_strings(env_strings);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(p[1]);
  if (rc != 0) {
    ::close(p[0]);
    return error{"spawn", "cannot start " + argv[0] + ": " + std::strerror(rc)};
  }
  return spawned{pid, p[0]};
}

int exit_code_of(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

// A spawned process whose death ends the run: SIGTERM asks kiln's shim to
// kill its tree; SIGKILL ends bwrap, whose PID namespace dies with it.
class spawned_tree : public process_tree {
 public:
  // `group`: the signal goes to the whole process group.
  spawned_tree(spawned s, int kill_signal, std::vector<std::string> also_on_kill = {},
               bool group = false)
    : s_(s), kill_signal_(kill_signal), also_on_kill_(std::move(also_on_kill)), group_(group) {}
  ~spawned_tree() override {
    if (!reaped_) {
      kill();
      wait();
    }
    ::close(s_.out);
  }
  int output_fd() const override { return s_.out; }
  void kill() override {
    if (reaped_)
      return;
    ::kill(group_ ? -s_.pid : s_.pid, kill_signal_);
    if (!also_on_kill_.empty() && !killed_once_) {
      killed_once_ = true;
      // A container outlives its client: remove it by name (runtime-notes).
      if (auto rm = spawn(also_on_kill_, nullptr, {})) {
        ::close(rm->out);
        int st = 0;
        ::waitpid(rm->pid, &st, 0);
      }
    }
  }
  int wait() override {
    if (!reaped_) {
      int st = 0;
      while (::waitpid(s_.pid, &st, 0) < 0 && errno == EINTR) {
      }
      status_ = exit_code_of(st);
      reaped_ = true;
    }
    return status_;
  }

 private:
  spawned s_;
  int kill_signal_;
  std::vector<std::string> also_on_kill_;
  bool group_ = false;
  bool reaped_ = false, killed_once_ = false;
  int status_ = 0;
};

class host_executor final : public executor {
 public:
  explicit host_executor(fs::path shim) : shim_(std::move(shim)) {}
  std::string name() const override { return "host"; }
  result<std::unique_ptr<process_tree>> launch(const launch_request& r) override {
    if (!r.binds.empty())
      return error{"unsupported", "the host executor cannot mount volumes (persistent-volumes, "
                                  "shared-volumes): run this worker with --executor bwrap"};
    auto s = spawn({shim_.string(), "--", r.script.string()}, &r.env,
                   r.dirs.workspace);
    if (!s)
      return s.error();
    return std::unique_ptr<process_tree>{new spawned_tree{*s, SIGTERM}};
  }

 private:
  fs::path shim_;
};

class bwrap_executor final : public executor {
 public:
  std::string name() const override { return "bwrap"; }
  result<std::unique_ptr<process_tree>> launch(const launch_request& r) override {
    auto s = spawn(bwrap_argv(r), &r.env, r.dirs.workspace);
    if (!s)
      return s.error();
    return std::unique_ptr<process_tree>{new spawned_tree{*s, SIGKILL}};
  }
};

class container_executor final : public executor {
 public:
  explicit container_executor(std::string engine) : engine_(std::move(engine)) {}
  std::string name() const override { return engine_; }
  result<std::unique_ptr<process_tree>> launch(const launch_request& r) override {
    auto s = spawn(container_argv(engine_, r), nullptr, r.dirs.workspace);
    if (!s)
      return s.error();
    return std::unique_ptr<process_tree>{
      new spawned_tree{*s, SIGKILL, remove_now(r.name)}};
  }

 private:
  // At once, with SIGKILL: podman's default waits 10 s for a SIGTERM that a
  // script running as the container's PID 1 never gets.
  std::vector<std::string> remove_now(const std::string& name) const {
    if (engine_ == "podman")
      return {engine_, "rm", "-f", "-t", "0", name};
    return {engine_, "rm", "-f", name};
  }
  std::string engine_;
};

bool runs_ok(std::vector<std::string> argv) {
  auto s = spawn(std::move(argv), nullptr, {});
  if (!s)
    return false;
  char buf[4096];
  while (::read(s->out, buf, sizeof buf) > 0) {
  }
  ::close(s->out);
  int st = 0;
  ::waitpid(s->pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// bubblewrap installed and allowed to make namespaces here.
bool bwrap_works() {
  return runs_ok({"bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--", "/bin/true"});
}

} // namespace

result<std::unique_ptr<process_tree>> spawn_plain(std::vector<std::string> argv,
                                                  const std::map<std::string, std::string>& env,
                                                  const fs::path& cwd) {
  auto s = spawn(std::move(argv), &env, cwd);
  if (!s)
    return s.error();
  return std::unique_ptr<process_tree>{new spawned_tree{*s, SIGKILL, {}, true}};
}

std::vector<std::string> bwrap_argv(const launch_request& r) {
  std::vector<std::string> a{"bwrap"};
  // The host's system, read-only; merged-/usr symlinks stay symlinks.
  for (const char* top : {"/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                          "/libx32"}) {
    std::error_code ec;
    auto st = fs::symlink_status(top, ec);
    if (ec || !fs::exists(st))
      continue;
    if (fs::is_symlink(st))
      a.insert(a.end(), {"--symlink", fs::read_symlink(top, ec).string(), top});
    else
      a.insert(a.end(), {"--ro-bind", top, top});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev"});
  a.insert(a.end(), {"--bind", r.dirs.tmp.string(), "/tmp"});
  a.insert(a.end(), {"--bind", r.dirs.tmp.string(), r.dirs.tmp.string()});  // $TMPDIR
  a.insert(a.end(), {"--ro-bind", r.dirs.bin.string(), r.dirs.bin.string()});
  a.insert(a.end(), {"--bind", r.dirs.workspace.string(), r.dirs.workspace.string()});
  a.insert(a.end(), {"--bind", r.dirs.archive.string(), r.dirs.archive.string()});
  a.insert(a.end(), {"--ro-bind", r.dirs.secrets.string(), r.dirs.secrets.string()});
  for (auto& b : r.binds)
    a.insert(a.end(), {b.read_only ? "--ro-bind" : "--bind", b.host.string(), b.inside.string()});
  // Not --unshare-all: as root it maps only uid 0 and breaks privilege
  // drops inside the job (runtime-notes.md).
  a.insert(a.end(), {"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"});
  if (!r.network)
    a.push_back("--unshare-net");
  a.insert(a.end(), {"--die-with-parent", "--new-session", "--cap-drop", "ALL",
                     "--hostname", "kiln-run", "--chdir", r.dirs.workspace.string(), "--",
                     r.script.string()});
  return a;
}

std::vector<std::string> container_argv(const std::string& engine, const launch_request& r) {
  std::vector<std::string> a{engine, "run", "--rm", "--name", r.name, "--network",
                             r.network ? "host" : "none", "--workdir", r.dirs.workspace.string()};
  auto bind = [&](const fs::path& from, const std::string& to, bool ro) {
    a.insert(a.end(), {"--volume", from.string() + ":" + to + (ro ? ":ro" : "")});
  };
  bind(r.dirs.workspace, r.dirs.workspace.string(), false);
  bind(r.dirs.archive, r.dirs.archive.string(), false);
  bind(r.dirs.secrets, r.dirs.secrets.string(), true);
  bind(r.dirs.tmp, "/tmp", false);
  bind(r.dirs.tmp, r.dirs.tmp.string(), false);
  bind(r.dirs.bin, r.dirs.bin.string(), true);
  for (auto& b : r.binds)
    bind(b.host, b.inside.string(), b.read_only);
  for (auto& [k, v] : r.env)
    if (k != "PATH" && k != "HOME")  // the image's own
      a.insert(a.end(), {"--env", k + "=" + v});
  auto& c = *r.container;
  if (c.privileged)
    a.push_back("--privileged");
  for (auto& cap : c.cap_add)
    a.insert(a.end(), {"--cap-add", cap});
  for (auto& cap : c.cap_drop)
    a.insert(a.end(), {"--cap-drop", cap});
  if (!c.user.empty())
    a.insert(a.end(), {"--user", c.user});
  if (!c.entrypoint.empty())
    a.insert(a.end(), {"--entrypoint", c.entrypoint});
  a.push_back(c.image);
  a.push_back(r.script.string());
  return a;
}

std::string default_executor_kind() {
  return bwrap_works() ? "bwrap" : "host";
}

// `version` and not `info`: podman's info asks dpkg for package versions
// (half a second of CPU per worker start); docker's version still needs
// the daemon to answer.
bool engine_answers(const std::string& kind) { return runs_ok({kind, "version"}); }

std::string probe_container_engine() {
  for (const char* kind : {"podman", "docker"})
    if (engine_answers(kind))
      return kind;
  return {};
}

result<std::unique_ptr<executor>> make_executor(const std::string& kind,
                                                const executor_options& options) {
  if (kind == "host") {
    if (options.shim_program.empty() || !fs::exists(options.shim_program))
      return error{"no_executor", "the host executor needs kiln-exec-shim beside kiln (not found: '"
                                    + options.shim_program.string() + "')"};
    return std::unique_ptr<executor>{new host_executor{options.shim_program}};
  }
  if (kind == "bwrap") {
    if (!bwrap_works())
      return error{"no_executor", "bubblewrap (bwrap) is not installed or does not work here; "
                                  "install it or use --executor host"};
    return std::unique_ptr<executor>{new bwrap_executor};
  }
  if (kind == "podman" || kind == "docker") {
    if (!engine_answers(kind))
      return error{"no_executor", kind + " is not installed or its engine does not answer"};
    return std::unique_ptr<executor>{new container_executor{kind}};
  }
  return error{"bad_request", "unknown executor '" + kind + "' (bwrap, host, podman, docker)"};
}

} // namespace kiln::worker
