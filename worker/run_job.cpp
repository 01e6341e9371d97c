#include "worker/run_job.hpp"

#include "worker/secret_masker.hpp"

#include "events/base64.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::worker {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

// The console as the server sees it: masked, and grepped for tests.
class masked_console {
 public:
  masked_console(console_sink& out, secret_masker& masker, test_grepper* grep)
    : out_(out), masker_(masker), grep_(grep) {}
  void script_output(std::string_view bytes) { emit(masker_.feed(bytes), true); }
  void note(const std::string& line) {
    emit(masker_.flush(), true);
    emit(masker_.mask(line), false);
  }
  void end() { emit(masker_.flush(), true); }

 private:
  void emit(const std::string& s, bool grep) {
    if (s.empty())
      return;
    out_.write(s);
    if (grep && grep_)
      grep_->feed(s);
  }
  console_sink& out_;
  secret_masker& masker_;
  test_grepper* grep_;
};

enum class ending { exited, timed_out, stopped };

// Copies the tree's output to the console until it is gone, killing it at
// the deadline or when asked to stop.
ending pump(process_tree& tree, masked_console& console, clock_type::time_point deadline,
            const std::atomic<bool>* stop) {
  ending why = ending::exited;
  char buf[64 * 1024];
  for (;;) {
    pollfd p{tree.output_fd(), POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r > 0) {
      auto n = ::read(tree.output_fd(), buf, sizeof buf);
      if (n > 0)
        console.script_output({buf, static_cast<std::size_t>(n)});
      else if (n == 0 || errno != EINTR)
        break;
    }
    if (why == ending::exited) {
      if (stop && stop->load())
        why = ending::stopped;
      else if (clock_type::now() >= deadline)
        why = ending::timed_out;
      if (why != ending::exited)
        tree.kill();
    }
  }
  return why;
}

// O_CLOEXEC, unlike an ofstream: a process another run starts meanwhile
// must not inherit this file open for writing, or exec'ing it as this
// run's script fails with ETXTBSY ("Text file busy").
status_result write_file(const fs::path& p, const std::string& text, mode_t mode) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  bool ok = fd >= 0;
  for (std::size_t at = 0; ok && at < text.size();) {
    auto n = ::write(fd, text.data() + at, text.size() - at);
    ok = n > 0 || (n < 0 && errno == EINTR);
    at += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  if (fd >= 0 && ::close(fd) != 0)
    ok = false;
  if (!ok || ::chmod(p.c_str(), mode) != 0)
    return error{"io", "cannot write " + p.string() + ": " + std::strerror(errno)};
  return kiln::ok;
}

std::vector<artifact_file> list_artifacts(const fs::path& archive) {
  std::vector<artifact_file> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator{archive, ec};
       !ec && it != fs::recursive_directory_iterator{}; it.increment(ec)) {
    // Regular files only: a symlink could point anywhere on the worker.
    if (it->is_symlink() || !it->is_regular_file())
      continue;
    out.push_back({fs::relative(it->path(), archive).generic_string(), it->path()});
  }
  std::sort(out.begin(), out.end(),
            [](const artifact_file& a, const artifact_file& b) { return a.path < b.path; });
  return out;
}

// A git-token secret's value; none (an untrusted build has no secrets):
// the clone goes without one.
std::string secret_or_empty(const run_definition& def, const std::string& name) {
  auto it = name.empty() ? def.secrets.end() : def.secrets.find(name);
  return it == def.secrets.end() ? std::string{} : it->second;
}

run_dirs dirs_under(const fs::path& root) {
  return {root, root / "ws", root / "archive", root / "secrets", root / "tmp", root / "bin"};
}

// Makes `dir` exist and hold nothing but the entries named in `keep`.
std::error_code empty_directory(const fs::path& dir, std::initializer_list<std::string_view> keep) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    fs::remove(dir, ec);  // a file or symlink the last run left in its place
    fs::create_directories(dir, ec);
    return ec;
  }
  std::vector<fs::path> doomed;
  for (auto it = fs::directory_iterator{dir, ec}; !ec && it != fs::directory_iterator{};
       it.increment(ec)) {
    auto name = it->path().filename().string();
    // Kept only as a plain file of its own: never a symlink or a hard link
    // a script planted to have the next run's writes land elsewhere.
    struct stat st{};
    if (std::find(keep.begin(), keep.end(), name) != keep.end()
        && ::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
      continue;
    doomed.push_back(it->path());
  }
  for (auto& p : doomed)
    if (fs::remove_all(p, ec); ec)
      return ec;
  return ec;
}

// bin/ holds only what the worker writes; its files are rewritten in place.
std::error_code empty_run_dirs(const run_dirs& d) {
  for (auto& dir : {d.workspace, d.archive, d.secrets, d.tmp})
    if (auto ec = empty_directory(dir, {}))
      return ec;
  if (auto ec = empty_directory(d.bin, {"script", "git-checkout"}))
    return ec;
  return ::chmod(d.secrets.c_str(), 0700) == 0 ? std::error_code{}
                                               : std::error_code{errno, std::generic_category()};
}

std::string status_line(const run_outcome& o) {
  return "== kiln: " + o.status + " (exit code " + std::to_string(o.exit_code) + ")"
         + (o.message.empty() ? "" : ": " + o.message) + "\n";
}

} // namespace

std::map<std::string, std::string> run_environment(const run_definition& def,
                                                   const run_settings& s, const run_dirs& dirs) {
  std::map<std::string, std::string> env;
  // The worker's own environment stays out, but for what a shell needs.
  for (const char* k : {"PATH", "LANG", "LC_ALL", "TZ"})
    if (const char* v = std::getenv(k))
      env[k] = v;
  if (!env.count("PATH"))
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
  env["HOME"] = dirs.workspace.string();
  for (auto& [k, v] : def.env)
    env[k] = v;
  auto runs = s.server_url + "/v1/projects/" + def.project + "/builds/" + std::to_string(def.build)
              + "/runs/";
  env["H_PROJECT"] = def.project;
  env["H_BUILD"] = std::to_string(def.build);
  env["H_RUN"] = def.run;
  env["H_RUN_URL"] = runs + def.run;
  env["H_WORKER"] = s.worker_name;
  if (!def.parent_run.empty())
    env["H_TRIGGER_URL"] = runs + def.parent_run;
  if (def.git) {
    env["GIT_URL"] = def.git->url;
    if (!def.git->sha.empty())
      env["GIT_SHA"] = def.git->sha;
    if (!def.git->ref.empty())
      env["GIT_REF"] = def.git->ref;
  }
  env["ARCHIVE"] = dirs.archive.string();
  env["SECRETS"] = dirs.secrets.string();
  env["TMPDIR"] = dirs.tmp.string();
  return env;
}

void clear_run_dirs(const fs::path& root) {
  if (auto ec = empty_run_dirs(dirs_under(root)))
    spdlog::warn("run dir={} cleared=no error=\"{}\"", root.string(), ec.message());
}

run_outcome execute_run(const run_definition& def, const run_settings& s, console_sink& sink) {
  std::vector<std::string> secret_values;
  for (auto& [k, v] : def.secrets) {
    secret_values.push_back(v);
    if (!v.empty() && v.size() < secret_masker::min_length)
      spdlog::warn("run id={} secret={} masked=no reason=\"shorter than {} bytes\"", def.run_id(),
                   k, secret_masker::min_length);
  }
  secret_masker masker{secret_values};
  std::unique_ptr<test_grepper> grepper;
  run_outcome out;
  auto fail = [&](masked_console& console, std::string message) {
    out.status = "FAILED";
    out.exit_code = out.exit_code ? out.exit_code : 1;
    out.message = masker.mask(message);
    console.note(status_line(out));
    console.end();
    return out;
  };
  masked_console early{sink, masker, nullptr};
  early.note(recreate_stanza(def, s.server_url));
  if (def.grepping) {
    auto g = test_grepper::make(*def.grepping);
    if (!g)
      return fail(early, "test-grepping: " + g.error().message);
    grepper = std::move(*g);
  }
  masked_console console{sink, masker, grepper.get()};

  auto dirs = dirs_under(s.root);
  // Empty, but only the run's own folders: the root may be the user's
  // (kiln simulate -w DIR).
  if (auto ec = empty_run_dirs(dirs))
    return fail(console, "cannot create the run's directories under " + s.root.string() + ": "
                           + ec.message());
  std::error_code ec;
  for (auto& [k, v] : def.secrets)
    if (auto w = write_file(dirs.secrets / k, v, 0600); !w)
      return fail(console, w.error().message);
  if (s.may_start && !s.may_start())
    return {};

  executor* exec = s.exec;
  if (def.container) {
    if (!s.containers)
      return fail(console, "no container engine on this worker (the run asks for image '"
                             + def.container->image + "'); install podman or docker");
    if (!def.container->auth_secret.empty())
      return fail(console, "container-auth is not supported: this worker pulls no images; "
                           "load '" + def.container->image + "' into the engine first");
    exec = s.containers;
  }
  std::vector<bind_mount> binds;
  auto inside = [&](const std::string& p) {
    return fs::path{p}.is_absolute() ? fs::path{p} : dirs.workspace / p;
  };
  for (auto& [name, path] : def.shared_volumes) {
    auto it = s.shared_volumes.find(name);
    if (it == s.shared_volumes.end()) {
      std::string offered;
      for (auto& [n, p] : s.shared_volumes)
        offered += (offered.empty() ? "" : ", ") + n;
      return fail(console, "this worker offers no shared volume '" + name + "' (it offers: "
                             + (offered.empty() ? "none" : offered) + ")");
    }
    binds.push_back({it->second, inside(path), true});
  }
  for (auto& [name, path] : def.persistent_volumes) {
    if (s.volumes.empty())
      return fail(console, "this worker keeps no persistent volumes");
    auto host = s.volumes / def.project / name;
    fs::create_directories(host, ec);
    if (ec)
      return fail(console, "cannot create the volume " + host.string() + ": " + ec.message());
    binds.push_back({host, inside(path), false});
  }

  auto env = run_environment(def, s, dirs);
  auto deadline = clock_type::now() + std::chrono::seconds{def.timeout_s};
  auto finish_stopped = [&](ending why, int code) {
    out.exit_code = code;
    out.status = why == ending::timed_out ? "TIMEOUT" : "CANCELLED";
    out.message = why == ending::timed_out
                    ? "killed after the run's timeout of " + std::to_string(def.timeout_s) + " s"
                    : s.stop_message;
    console.note(status_line(out));
    return out;
  };

  // Clones URL at REF into DEST (git on the host, killable like the script).
  if (def.git || def.script_repo) {
    auto w = write_file(dirs.bin / "git-checkout",
                        "#!/bin/sh\nset -e\ngit clone -q \"$1\" \"$3\"\n"
                        "if [ -n \"$2\" ]; then git -C \"$3\" checkout -q \"$2\"; fi\n",
                        0755);
    if (!w)
      return fail(console, w.error().message);
  }
  auto checkout = [&](const std::string& url, const std::string& ref, const fs::path& dest,
                      const std::string& token) -> std::optional<run_outcome> {
    console.note("== kiln: git clone " + url + (ref.empty() ? "" : " at " + ref) + "\n");
    auto git_env = env;
    if (!token.empty()) {
      // As configuration in the environment, not in argv: no other process sees it.
      git_env["GIT_CONFIG_COUNT"] = "1";
      git_env["GIT_CONFIG_KEY_0"] = "http.extraHeader";
      git_env["GIT_CONFIG_VALUE_0"] = "Authorization: Basic " + base64_encode("x-access-token:" + token);
    }
    auto tree = spawn_plain({"/bin/sh", (dirs.bin / "git-checkout").string(), url, ref,
                             dest.string()},
                            git_env, dirs.workspace);
    if (!tree)
      return fail(console, tree.error().message);
    auto why = pump(**tree, console, deadline, s.stop);
    auto code = (*tree)->wait();
    if (why != ending::exited)
      return finish_stopped(why, code);
    if (code != 0) {
      out.exit_code = code;
      return fail(console, "git clone of " + url + " failed");
    }
    return std::nullopt;
  };
  if (def.git)
    if (auto ended = checkout(def.git->url, def.git->sha, dirs.workspace,
                              secret_or_empty(def, def.git->token_secret)))
      return *ended;

  std::string script_text = def.script;
  if (def.script_repo) {
    auto& repo = *def.script_repo;
    std::string token;
    if (!repo.token_secret.empty()) {
      auto it = def.secrets.find(repo.token_secret);
      if (it == def.secrets.end())
        return fail(console, "script-repo token secret '" + repo.token_secret
                               + "' is not set for this project");
      token = it->second;
    }
    auto clone = dirs.bin / "script-repo";
    if (auto ended = checkout(repo.clone_url, repo.git_ref, clone, token))
      return *ended;
    std::ifstream in{clone / repo.path, std::ios::binary};
    if (!in)
      return fail(console, "script-repo " + repo.clone_url + " has no '" + repo.path + "'");
    script_text.assign(std::istreambuf_iterator<char>{in}, {});
  }

  // A script without a shebang runs under /bin/sh, as JobServ does.
  auto text = script_text.starts_with("#!") ? script_text : "#!/bin/sh\n" + script_text;
  auto script = dirs.bin / "script";
  if (auto w = write_file(script, text, 0755); !w)
    return fail(console, w.error().message);
  // Unique on this host while it runs: the name a container is removed by.
  static std::atomic<std::uint64_t> launches{0};
  launch_request req{script, env, dirs, def.network, def.container ? &*def.container : nullptr,
                     "kiln-" + std::to_string(::getpid()) + "-" + std::to_string(++launches),
                     binds};
  auto tree = exec->launch(req);
  if (!tree)
    return fail(console, tree.error().message);
  auto why = pump(**tree, console, deadline, s.stop);
  auto code = (*tree)->wait();
  console.end();
  if (why != ending::exited)
    return finish_stopped(why, code);

  out.exit_code = code;
  out.artifacts = list_artifacts(dirs.archive);
  for (auto& a : out.artifacts)
    if (a.file.filename().string().starts_with("junit.xml")) {
      auto suite = parse_junit(a.file);
      if (suite)
        out.tests.push_back(std::move(*suite));
      else
        console.note("== kiln: ignoring " + a.path + ": " + suite.error().message + "\n");
    }
  if (grepper)
    for (auto& suite : grepper->finish())
      out.tests.push_back(std::move(suite));
  for (auto& suite : out.tests)
    for (auto& t : suite.results) {
      t.name = masker.mask(t.name);
      t.message = masker.mask(t.message);
    }
  bool tests_failed = std::any_of(out.tests.begin(), out.tests.end(),
                                  [](const test_suite& t) { return t.failed(); });
  out.status = code == 0 && !tests_failed ? "PASSED" : "FAILED";
  if (code == 0 && tests_failed)
    out.message = "tests failed";
  if (s.store_artifacts)
    if (auto failure = s.store_artifacts(out.artifacts); !failure.empty()) {
      out.status = "FAILED";
      out.message = failure;
    }
  console.note(status_line(out));
  return out;
}

} // namespace kiln::worker
