#include "actors/git_poller.hpp"

#include "actors/core.hpp"
#include "actors/periodic.hpp"
#include "events/base64.hpp"
#include "events/commit.hpp"
#include "events/sha256.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fnmatch.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <random>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace kiln::core {

namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Runs git with `args`, never asking for a password, and returns its
// standard output; a failure (or the timeout) is an error with git's own
// words.
result<std::string> run_git(std::vector<std::string> args, std::chrono::seconds timeout,
                            const std::string& token = {}) {
  args.insert(args.begin(), "git");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings{"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/true",
                                       "LC_ALL=C", "PATH=/usr/local/bin:/usr/bin:/bin"};
  if (const char* home = std::getenv("HOME"))
    env_strings.push_back(std::string{"HOME="} + home);
  if (!token.empty()) {
    // As configuration in the environment, not in argv: no other process sees it.
    env_strings.push_back("GIT_CONFIG_COUNT=1");
    env_strings.push_back("GIT_CONFIG_KEY_0=http.extraHeader");
    env_strings.push_back("GIT_CONFIG_VALUE_0=Authorization: Basic "
                          + base64_encode("x-access-token:" + token));
  }
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return error{"io", std::string{"pipe: "} + std::strerror(errno)};
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return error{"io", std::string{"pipe: "} + std::strerror(errno)};
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "git", &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return error{"unavailable", std::string{"cannot run git: "} + std::strerror(rc)};
  }
  std::string stdout_text, stderr_text;
  auto deadline = clock_type::now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[8192];
      auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? stdout_text : stderr_text).append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0)
      ::close(f.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (timed_out)
    return error{"timeout", "git " + args[1] + " took longer than "
                              + std::to_string(timeout.count()) + " s"};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!stderr_text.empty() && std::isspace(static_cast<unsigned char>(stderr_text.back())))
      stderr_text.pop_back();
    return error{"unavailable", "git " + args[1] + " failed: " + stderr_text};
  }
  return stdout_text;
}

bool skip_requested(const std::string& message) {
  return message.find("[skip ci]") != std::string::npos
         || message.find("[ci skip]") != std::string::npos;
}


} // namespace

struct git_poller::impl {
  core& c;
  git_poller_options o;
  std::map<std::string, clock_type::time_point> due;  // project/trigger/url -> next poll
  std::map<std::string, std::string> last_problem;    // logged once until it changes
  std::mt19937 random{std::random_device{}()};
  std::unique_ptr<periodic> thread;

  impl(core& c, git_poller_options o) : c(c), o(std::move(o)) {}

  void tick(const periodic& p);
  void poll(const git_poller_info& t, const std::string& url);
  result<param_map> heads(const git_poller_info& t, const std::string& url,
                          const std::string& token);
  result<std::pair<std::string, std::string>> head_commit(const std::string& url,
                                                          const std::string& ref,
                                                          const std::string& token);
  void problem(const std::string& key, const std::string& message);
};

void git_poller::impl::tick(const periodic& p) {
  auto listed = c.read(list_git_pollers{});
  if (!listed)
    return;
  for (auto& t : std::get<std::vector<git_poller_info>>(*listed))
    for (auto& url : t.urls) {
      auto key = t.project + "/" + t.trigger + "/" + url;
      auto now = clock_type::now();
      if (auto it = due.find(key); it != due.end() && it->second > now)
        continue;
      std::uniform_int_distribution<int> jitter{0, std::max(1, t.interval_s * 100)};
      due[key] = now + std::chrono::seconds{t.interval_s} + std::chrono::milliseconds{jitter(random)};
      poll(t, url);
      if (p.stopping())
        return;
    }
}

void git_poller::impl::problem(const std::string& key, const std::string& message) {
  auto& last = last_problem[key];
  if (last != message)
    spdlog::warn("core git=poll-failed what={} message=\"{}\"", key, message);
  last = message;
}

result<param_map> git_poller::impl::heads(const git_poller_info& t, const std::string& url,
                                          const std::string& token) {
  auto listing = run_git({"ls-remote", "--", url}, o.git_timeout, token);
  if (!listing)
    return listing.error();
  std::vector<std::string> globs = t.ref_globs;
  if (globs.empty())
    globs.push_back("refs/heads/*");
  param_map out;
  std::size_t at = 0;
  auto& text = *listing;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos)
      end = text.size();
    auto line = text.substr(at, end - at);
    at = end + 1;
    auto tab = line.find('\t');
    if (tab == std::string::npos)
      continue;
    auto sha = line.substr(0, tab), ref = line.substr(tab + 1);
    if (ref.ends_with("^{}"))
      continue;  // a tag's peeled commit
    for (auto& g : globs)
      if (::fnmatch(g.c_str(), ref.c_str(), 0) == 0) {
        out[ref] = sha;
        break;
      }
  }
  return out;
}

// The sha and message of `ref`'s head commit, by a shallow fetch into a
// cache repository of the URL's own.
result<std::pair<std::string, std::string>> git_poller::impl::head_commit(const std::string& url,
                                                                         const std::string& ref,
                                                                         const std::string& token) {
  auto repo = o.cache / sha256_hex(url).substr(0, 24);
  if (!fs::exists(repo / "HEAD"))
    if (auto made = run_git({"init", "--bare", "-q", repo.string()}, o.git_timeout); !made)
      return made.error();
  auto r = repo.string();
  if (auto f = run_git({"-C", r, "fetch", "-q", "--no-tags", "--depth=1", "--", url, ref},
                       o.git_timeout, token);
      !f)
    return f.error();
  auto sha = run_git({"-C", r, "rev-parse", "FETCH_HEAD"}, o.git_timeout);
  if (!sha)
    return sha.error();
  auto message = run_git({"-C", r, "log", "-1", "--format=%B", "FETCH_HEAD"}, o.git_timeout);
  if (!message)
    return message.error();
  auto s = *sha;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  return std::pair{s, *message};
}

void git_poller::impl::poll(const git_poller_info& t, const std::string& url) {
  auto key = t.project + "/" + t.trigger + " url=" + url;
  std::string token;
  if (!t.token_secret.empty()) {
    auto opened = c.read(open_secret{t.project, t.token_secret});
    if (!opened)
      return problem(key, "git-token: " + opened.error().message);
    token = std::get<secret_value>(*opened).value;
  }
  auto now = heads(t, url, token);
  if (!now)
    return problem(key, now.error().message);
  auto seen = t.seen.find(url);
  record_git_refs what{t.project, t.trigger, url, std::move(*now), {}};
  if (seen != t.seen.end()) {
    if (seen->second == what.refs)
      return;  // nothing moved
    for (auto& [ref, sha] : what.refs) {
      auto before = seen->second.find(ref);
      if (before == seen->second.end() || before->second == sha)
        continue;
      auto head = head_commit(url, ref, token);
      if (!head)
        return problem(key, head.error().message);
      sha = head->first;  // it may have moved again since the listing
      if (skip_requested(head->second)) {
        what.skip.insert(ref);
        spdlog::info("core git=skip project={} trigger={} ref={} sha={} reason=\"[skip ci]\"",
                     t.project, t.trigger, ref, sha);
      }
    }
  }
  last_problem.erase(key);
  auto changed = what.refs.size();
  auto r = c.call(std::move(what), {"git_poller", ""});
  if (!r)
    return problem(key, r.error().message);
  spdlog::info("core git=polled project={} trigger={} url={} refs={}", t.project, t.trigger, url,
               changed);
}

git_poller::git_poller(core& c, git_poller_options options)
  : impl_(std::make_unique<impl>(c, std::move(options))) {
  std::error_code ec;
  fs::create_directories(impl_->o.cache, ec);
  impl_->thread = std::make_unique<periodic>(
    impl_->o.tick, [p = impl_.get()](const periodic& self) { p->tick(self); });
}

// Waits for a git command under way to end.
git_poller::~git_poller() = default;

} // namespace kiln::core
