// The worker's parts without a server: masking, test results, rundefs, and
// real runs under the host and bwrap executors (real child processes).
#include "events/base64.hpp"
#include "support/http_receiver.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "worker/executor.hpp"
#include "worker/run_job.hpp"
#include "worker/secret_masker.hpp"
#include "worker/test_results.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <fcntl.h>
#include <unistd.h>
#include <mutex>
#include <thread>

using namespace kiln;
using namespace kiln::worker;
using namespace kiln::test;
namespace fs = std::filesystem;

namespace {

std::string mask_in_pieces(std::vector<std::string> secrets, const std::string& text,
                           std::size_t cut) {
  secret_masker m{std::move(secrets)};
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += cut)
    out += m.feed(std::string_view{text}.substr(i, cut));
  return out + m.flush();
}

struct recording_console : console_sink {
  std::mutex mu;
  std::string text;
  void write(std::string_view b) override {
    std::lock_guard lock{mu};
    text.append(b);
  }
  bool holds(const std::string& s) {
    std::lock_guard lock{mu};
    return text.find(s) != std::string::npos;
  }
};


run_definition rundef(const std::string& script, std::uint32_t timeout_s = 30) {
  auto d = parse_run_definition(nlohmann::json{{"project", "p"}, {"build", 7}, {"run", "r"},
                                               {"timeout_s", timeout_s}, {"script", script},
                                               {"env", {{"GREETING", "hi"}}},
                                               {"secrets", {{"api-key", "s3cr3t-value"}}}}
                                  .dump());
  REQUIRE(d);
  return *d;
}

std::vector<std::string> executors_here() {
  std::vector<std::string> out{"host"};
  if (default_executor_kind() == "bwrap")
    out.push_back("bwrap");
  else
    WARN("bubblewrap does not work here: the bwrap executor is not tested");
  return out;
}

} // namespace

TEST_CASE("a secret is masked wherever the stream is cut", "[worker]") {
  std::string text = "key=s3cr3t-value; again s3cr3t-value!";
  for (std::size_t cut = 1; cut <= text.size(); ++cut)
    CHECK(mask_in_pieces({"s3cr3t-value"}, text, cut) == "key=***; again ***!");
  // One value's tail is another's head: neither leaks a part.
  for (std::size_t cut = 1; cut <= 6; ++cut)
    CHECK(mask_in_pieces({"ABCD", "CDEF"}, "xABCDy", cut) == "x***y");
  CHECK(mask_in_pieces({"ab"}, "ab", 1) == "ab");  // too short to mask
  CHECK(mask_in_pieces({"tok"}, "to", 1) == "to");  // a held prefix comes out at the end
}

TEST_CASE("test-grepping turns console lines into results", "[worker]") {
  auto g = test_grepper::make({R"(^Running (?P<name>\S+))",
                               R"(^\s*(?P<name>\w+): (?P<result>PASS|FAIL|WEIRD))",
                               {{"PASS", "PASSED"}, {"FAIL", "FAILED"}}});
  REQUIRE(g);
  (*g)->feed("Running unit\n  a: PASS\n  b: FA");
  (*g)->feed("IL\nRunning lint\n  c: WEIRD\nnoise\n");
  auto suites = (*g)->finish();
  REQUIRE(suites.size() == 2);
  CHECK(suites[0].name == "unit");
  REQUIRE(suites[0].results.size() == 2);
  CHECK(suites[0].results[1].name == "b");
  CHECK(suites[0].results[1].status == "FAILED");
  CHECK(suites[1].results[0].status == "FAILED");  // not in fixupdict
  CHECK(suites[1].results[0].message.find("fixupdict") != std::string::npos);

  auto bad = test_grepper::make({"", "(?P<result>[", {}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("result-pattern") != std::string::npos);
  CHECK_FALSE(test_grepper::make({"", "(?P<name>x)", {}}));  // no result group
}

TEST_CASE("JUnit XML becomes a suite, and a malformed file names line and column", "[worker]") {
  temp_dir dir;
  std::ofstream{dir / "junit.xml"}
    << "<testsuites><testsuite name=\"core\">\n"
       "<testcase classname=\"a\" name=\"ok\" time=\"0.25\"/>\n"
       "<testcase name=\"broken\"><failure message=\"expected 1\">trace</failure></testcase>\n"
       "<testcase name=\"later\"><skipped/></testcase>\n"
       "</testsuite></testsuites>\n";
  auto s = parse_junit(dir / "junit.xml");
  REQUIRE(s);
  CHECK(s->name == "core");
  REQUIRE(s->results.size() == 3);
  CHECK(s->results[0].name == "a.ok");
  CHECK(s->results[0].duration_ms == 250);
  CHECK(s->results[1].status == "FAILED");
  CHECK(s->results[1].message.find("expected 1") != std::string::npos);
  CHECK(s->results[2].status == "SKIPPED");
  CHECK(s->failed());

  std::ofstream{dir / "junit.xml.bad"} << "<testsuite>\n  <testcase name=\"x\">\n</testsuite>\n";
  auto bad = parse_junit(dir / "junit.xml.bad");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("junit.xml.bad:3:") != std::string::npos);
}

TEST_CASE("a rundef without what a run needs is refused, naming it", "[worker]") {
  CHECK_FALSE(parse_run_definition("not json"));
  auto r = parse_run_definition(R"({"project":"p","build":1,"run":"r"})");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("script") != std::string::npos);
}

TEST_CASE("a run gets its environment, secrets as files, artifacts and tests", "[worker]") {
  for (auto& kind : executors_here()) {
    DYNAMIC_SECTION("executor " << kind) {
      temp_dir dir;
      auto exec = make_executor(kind, {KILN_SHIM_BINARY});
      REQUIRE(exec);
      auto def = rundef("#!/bin/sh -e\n"
                        "echo \"$GREETING from $H_PROJECT/$H_BUILD/$H_RUN on $H_WORKER\"\n"
                        "echo \"key: $(cat $SECRETS/api-key)\"\n"
                        "mkdir -p $ARCHIVE/sub && printf 'abc' > $ARCHIVE/sub/out.bin\n"
                        "echo '<testsuite><testcase name=\"t\"/></testsuite>' > $ARCHIVE/junit.xml\n"
                        "exit 0\n");
      run_settings s{dir / "run", exec->get(), nullptr, "w1", "http://kiln:8080"};
      recording_console console;
      auto out = execute_run(def, s, console);
      INFO(console.text);
      CHECK(out.status == "PASSED");
      CHECK(console.holds("hi from p/7/r on w1"));
      CHECK(console.holds("key: ***"));
      CHECK_FALSE(console.holds("s3cr3t-value"));
      CHECK(console.holds("kiln simulate rundef.json"));  // the recreate stanza
      REQUIRE(out.artifacts.size() == 2);
      CHECK(out.artifacts[1].path == "sub/out.bin");
      REQUIRE(out.tests.size() == 1);
      CHECK(out.tests[0].results[0].name == "t");
    }
  }
}

TEST_CASE("a run folder reused for the next run is empty, and planted links are not followed", "[worker]") {
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  auto outside = dir / "outside.txt";
  std::ofstream{outside} << "untouched";
  recording_console first;
  // The first run leaves files everywhere it may write, and swaps the
  // worker's script file for a link to a file outside the run.
  auto leaves = rundef("#!/bin/sh\n"
                       "touch ws-file $ARCHIVE/old.txt $TMPDIR/old-tmp\n"
                       "ln -sf " + outside.string() + " \"$(dirname $0)/script.new\" && "
                       "mv -f \"$(dirname $0)/script.new\" \"$0\"\n"
                       "ln -sf " + outside.string() + " \"$(dirname $0)/git-checkout\"\n");
  REQUIRE(execute_run(leaves, {dir / "slot", exec->get()}, first).status == "PASSED");
  clear_run_dirs(dir / "slot");
  CHECK(fs::is_empty(dir / "slot" / "ws"));
  CHECK(fs::is_empty(dir / "slot" / "secrets"));  // the secret file is gone at once

  recording_console second;
  auto looks = rundef("#!/bin/sh\nls -A . $ARCHIVE $TMPDIR | tr '\\n' ' '; echo\ncat $SECRETS/api-key; echo\n");
  auto out = execute_run(looks, {dir / "slot", exec->get()}, second);
  INFO(second.text);
  CHECK(out.status == "PASSED");
  CHECK_FALSE(second.holds("ws-file"));
  CHECK_FALSE(second.holds("old"));
  CHECK(out.artifacts.empty());
  CHECK(second.holds("***"));  // this run's own secret file
  std::ifstream in{outside};
  std::string kept{std::istreambuf_iterator<char>{in}, {}};
  CHECK(kept == "untouched");
}

TEST_CASE("a run the server no longer gives this worker stops before anything of it runs", "[worker]") {
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  recording_console console;
  run_settings s{dir / "run", exec->get()};
  bool asked = false;
  s.may_start = [&] {
    asked = true;
    CHECK(fs::exists(dir / "run" / "secrets" / "api-key"));  // asked once all is ready
    return false;
  };
  auto out = execute_run(rundef("#!/bin/sh\ntouch $ARCHIVE/ran\n"), s, console);
  CHECK(asked);
  CHECK(out.status.empty());
  CHECK_FALSE(fs::exists(dir / "run" / "archive" / "ran"));
}

TEST_CASE("a failing script fails the run with its exit code", "[worker]") {
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  recording_console console;
  auto out = execute_run(rundef("echo no shebang here; exit 3\n"), {dir / "run", exec->get()},
                         console);
  CHECK(out.status == "FAILED");
  CHECK(out.exit_code == 3);
  CHECK(console.holds("no shebang here"));
}

TEST_CASE("the shim waits out a script still held open for writing by another process", "[worker]") {
  // Another run's process, forked while this script was being written,
  // holds it open until its own exec: running it meanwhile fails ETXTBSY.
  temp_dir dir;
  auto script = dir / "script";
  int fd = ::open(script.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  REQUIRE(fd >= 0);
  std::string text = "#!/bin/sh\necho ran\n";
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  child_process shim{{{KILN_SHIM_BINARY, "--", script.string()}, true}};
  // Still busy: the shim keeps trying rather than failing the run.
  CHECK_FALSE(wait_until([&] { return shim.wait(10ms).has_value(); }, 300ms));
  ::close(fd);
  CHECK(shim.wait(10s) == 0);
  CHECK(shim.read_line(5s) == std::optional<std::string>{"ran"});
}

TEST_CASE("a timeout kills the whole process tree, setsid'ed children too", "[worker]") {
  for (auto& kind : executors_here()) {
    DYNAMIC_SECTION("executor " << kind) {
      temp_dir dir;
      auto exec = make_executor(kind, {KILN_SHIM_BINARY});
      REQUIRE(exec);
      std::string marker = "98765" + std::to_string(::getpid() % 1000);
      auto def = rundef("#!/bin/sh\n"
                        "setsid sleep " + marker + " &\n"
                        "(sleep " + marker + " &)\n"
                        "trap '' TERM\n"
                        "echo started; sleep " + marker + "\n",
                        1);
      recording_console console;
      auto out = execute_run(def, {dir / "run", exec->get()}, console);
      CHECK(out.status == "TIMEOUT");
      CHECK(console.holds("started"));
      CHECK(wait_until([&] { return processes_with("sleep\0" + marker) == 0
                                    && processes_with(marker) == 0; }, 5s));
    }
  }
}

TEST_CASE("a stopped run is killed and reported CANCELLED", "[worker]") {
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  std::atomic<bool> stop{false};
  recording_console console;
  run_settings s{dir / "run", exec->get()};
  s.stop = &stop;
  s.stop_message = "cancelled by test";
  std::thread stopper{[&] {
    wait_until([&] { return console.holds("ready"); });
    stop = true;
  }};
  auto out = execute_run(rundef("echo ready; sleep 600\n"), s, console);
  stopper.join();
  CHECK(out.status == "CANCELLED");
  CHECK(out.message == "cancelled by test");
}

TEST_CASE("a run that needs a container fails clearly on a worker without an engine",
          "[worker]") {
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  auto d = parse_run_definition(R"({"project":"p","build":1,"run":"r","script":"true",
                                    "container":{"image":"debian:bookworm"}})");
  REQUIRE(d);
  recording_console console;
  auto out = execute_run(*d, {dir / "run", exec->get(), nullptr}, console);
  CHECK(out.status == "FAILED");
  CHECK(out.message.find("no container engine on this worker") != std::string::npos);
}

TEST_CASE("the bwrap sandbox: read-only system, no network, own PID namespace, no caps",
          "[worker]") {
  if (default_executor_kind() != "bwrap") {
    WARN("bubblewrap does not work here: skipped");
    return;
  }
  temp_dir dir;
  auto exec = make_executor("bwrap", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  recording_console console;
  auto out = execute_run(rundef("#!/bin/sh\n"
                                "touch /usr/kiln-escape 2>/dev/null && echo wrote-usr\n"
                                "echo pid=$$\n"
                                "ls /sys/class/net | tr '\\n' ' '; echo\n"
                                "grep CapEff /proc/self/status\n"
                                "echo ok > $ARCHIVE/a\n"),
                         {dir / "run", exec->get()}, console);
  INFO(console.text);
  CHECK(out.status == "PASSED");
  CHECK_FALSE(console.holds("wrote-usr"));
  CHECK_FALSE(fs::exists("/usr/kiln-escape"));
  CHECK(console.holds("pid=2\n"));  // bwrap's init is 1
  CHECK(console.holds("CapEff:\t0000000000000000"));
  CHECK(out.artifacts.size() == 1);
}

TEST_CASE("a git-triggered run starts in a clone at GIT_SHA, and script-repo scripts are fetched", "[worker]") {
  temp_dir dir;
  auto repo = dir / "repo";
  auto git = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/git", "-C", repo.string(), "-c", "user.name=kiln",
                                  "-c", "user.email=kiln@example.com"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [code, out] = run(argv);
    INFO(out);
    REQUIRE(code == 0);
    return out;
  };
  fs::create_directories(repo);
  git({"init", "-q"});
  std::ofstream{repo / "version.txt"} << "first\n";
  git({"add", "version.txt"});
  git({"commit", "-q", "-m", "one"});
  auto first = git({"rev-parse", "HEAD"});
  first.erase(first.find_last_not_of("\n") + 1);
  std::ofstream{repo / "version.txt"} << "second\n";
  git({"commit", "-q", "-am", "two"});

  auto d = parse_run_definition(nlohmann::json{{"project", "p"}, {"build", 1}, {"run", "r"},
                                               {"script", "#!/bin/sh\necho \"have $(cat version.txt)\"\n"},
                                               {"git", {{"url", repo.string()}, {"sha", first}}}}
                                  .dump());
  REQUIRE(d);
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  recording_console console;
  auto out = execute_run(*d, {dir / "run", exec->get()}, console);
  INFO(console.text);
  CHECK(out.status == "PASSED");
  CHECK(console.holds("have first"));

  // A script from `script-repos`: a file of another repository at its ref.
  fs::create_directories(repo / "ci");
  std::ofstream{repo / "ci" / "check.sh"} << "#!/bin/sh\necho \"repo script sees $GREETING\"\n";
  git({"add", "ci/check.sh"});
  git({"commit", "-q", "-m", "three"});
  auto from_repo = parse_run_definition(
    nlohmann::json{{"project", "p"}, {"build", 1}, {"run", "s"}, {"env", {{"GREETING", "hello"}}},
                   {"script_repo", {{"clone_url", repo.string()}, {"git_ref", "HEAD"},
                                    {"token_secret", ""}, {"path", "ci/check.sh"}}}}
      .dump());
  REQUIRE(from_repo);
  recording_console repo_console;
  CHECK(execute_run(*from_repo, {dir / "run3", exec->get()}, repo_console).status == "PASSED");
  CHECK(repo_console.holds("repo script sees hello"));
  from_repo->script_repo->path = "ci/missing.sh";
  recording_console missing;
  auto none = execute_run(*from_repo, {dir / "run4", exec->get()}, missing);
  CHECK(none.status == "FAILED");
  CHECK(none.message.find("has no 'ci/missing.sh'") != std::string::npos);

  d->git->sha = "0000000000000000000000000000000000000000";
  recording_console bad;
  auto failed = execute_run(*d, {dir / "run2", exec->get()}, bad);
  CHECK(failed.status == "FAILED");
  CHECK(failed.message.find("git clone") != std::string::npos);
}

TEST_CASE("persistent volumes outlive a run, shared volumes are offered by name", "[worker]") {
  temp_dir dir;
  fs::create_directories(dir / "refs");
  std::ofstream{dir / "refs" / "data.txt"} << "shared data\n";
  auto def = [&](const std::string& run, std::string shared) {
    auto d = parse_run_definition(
      nlohmann::json{{"project", "p"}, {"build", 1}, {"run", run},
                     {"script", "#!/bin/sh -e\necho run >> /cache/count\ncat /cache/count | wc -l\n"
                                "cat /refs/data.txt\n"},
                     {"persistent_volumes", {{"cache", "/cache"}}},
                     {"shared_volumes", {{shared, "/refs"}}}}
        .dump());
    REQUIRE(d);
    return *d;
  };
  auto host = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(host);
  recording_console refused;
  auto h = execute_run(def("h", "refs"), {dir / "h", host->get(), nullptr, "w", "", nullptr,
                                          "", dir / "volumes", {{"refs", dir / "refs"}}},
                       refused);
  CHECK(h.status == "FAILED");
  CHECK(h.message.find("cannot mount volumes") != std::string::npos);

  if (default_executor_kind() != "bwrap") {
    WARN("bubblewrap does not work here: volumes under bwrap not tested");
    return;
  }
  auto exec = make_executor("bwrap", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  run_settings s{dir / "r", exec->get(), nullptr, "w", "", nullptr, "", dir / "volumes",
                 {{"refs", dir / "refs"}}};
  recording_console first, second, missing;
  CHECK(execute_run(def("one", "refs"), s, first).status == "PASSED");
  CHECK(execute_run(def("two", "refs"), s, second).status == "PASSED");
  INFO(second.text);
  CHECK(second.holds("\n2\n"));  // the second run saw the first one's line
  CHECK(second.holds("shared data"));
  auto m = execute_run(def("three", "nope"), s, missing);
  CHECK(m.status == "FAILED");
  CHECK(m.message.find("no shared volume 'nope' (it offers: refs)") != std::string::npos);
}

namespace {

// A tiny image (busybox) imported into podman, or "" where podman or
// busybox is missing here.
// A busybox image imported into `engine` ("" where that engine does not
// answer or busybox-static is missing).
std::string busybox_image(const fs::path& scratch, const std::string& engine) {
  if (!std::getenv("CONTAINERS_CONF"))
    ::setenv("CONTAINERS_CONF", KILN_PODMAN_CONF, 1);
  if (!make_executor(engine, {KILN_SHIM_BINARY}) || !fs::exists("/usr/bin/busybox"))
    return {};
  auto root = scratch / "rootfs";
  for (auto d : {"bin", "tmp", "proc", "dev", "etc"})
    fs::create_directories(root / d);
  fs::copy_file("/usr/bin/busybox", root / "bin" / "busybox");
  for (auto cmd : {"sh", "echo", "cat", "sleep", "mkdir", "true"})
    fs::create_symlink("busybox", root / "bin" / cmd);
  auto tar = (scratch / "rootfs.tar").string();
  if (run({"/usr/bin/tar", "-C", root.string(), "-cf", tar, "."}).first != 0)
    return {};
  if (run({"/usr/bin/" + engine, "import", tar, "kiln-test-busybox"}).first != 0)
    return {};
  return "kiln-test-busybox";
}

} // namespace

TEST_CASE("a run with container: runs in the image under podman and docker, killed whole at its timeout",
          "[worker]") {
  for (std::string kind : {"podman", "docker"}) {
    temp_dir dir;
    auto image = busybox_image(dir.path(), kind);
    if (image.empty()) {
      WARN(kind << " (with busybox-static for the test image) is not here: its container runs are not tested");
      continue;
    }
    DYNAMIC_SECTION("engine " << kind) {
      auto engine = make_executor(kind, {KILN_SHIM_BINARY});
      REQUIRE(engine);
      auto host = make_executor("host", {KILN_SHIM_BINARY});
      REQUIRE(host);
      auto def = rundef("#!/bin/sh\n"
                        "echo \"in $(cat /etc/os-release 2>/dev/null || echo busybox)\"\n"
                        "echo \"key: $(cat $SECRETS/api-key)\"\n"
                        "echo made-in-container > $ARCHIVE/c.txt\n");
      def.container = container_spec{image};
      recording_console console;
      auto out = execute_run(def, {dir / "run", host->get(), engine->get()}, console);
      INFO(console.text);
      CHECK(out.status == "PASSED");
      CHECK(console.holds("in busybox"));  // not the host's Debian
      CHECK(console.holds("key: ***"));
      REQUIRE(out.artifacts.size() == 1);
      CHECK(out.artifacts[0].path == "c.txt");

      auto slow = rundef("#!/bin/sh\necho waiting; sleep 876503\n", 1);
      slow.container = container_spec{image};
      recording_console slow_console;
      auto timed_out = execute_run(slow, {dir / "slow", host->get(), engine->get()}, slow_console);
      CHECK(timed_out.status == "TIMEOUT");
      CHECK(wait_until([] { return processes_with("876503") == 0; }, 10s));
      auto [code, ps] = run({"/usr/bin/" + kind, "ps", "-a", "--format", "{{.Names}}"});
      CHECK(ps.find("kiln-") == std::string::npos);  // the container was removed

      auto refused = rundef("true\n");
      refused.container = container_spec{image};
      refused.container->auth_secret = "registry-token";
      recording_console refused_console;
      auto r = execute_run(refused, {dir / "refused", host->get(), engine->get()}, refused_console);
      CHECK(r.status == "FAILED");
      CHECK(r.message.find("container-auth is not supported") != std::string::npos);
      run({"/usr/bin/" + kind, "rmi", "-f", image});
    }
  }
}

TEST_CASE("a git-triggered run clones with its trigger's git-token secret as credentials", "[worker]") {
  http_receiver server{401};  // a private repository asks for credentials
  temp_dir dir;
  auto exec = make_executor("host", {KILN_SHIM_BINARY});
  REQUIRE(exec);
  auto d = parse_run_definition(
    nlohmann::json{{"project", "p"}, {"build", 1}, {"run", "r"}, {"script", "true"},
                   {"secrets", {{"repo-token", "t0ken-value"}}},
                   {"git", {{"url", server.url() + "/acme/app.git"}, {"sha", "abc"}, {"token_secret", "repo-token"}}}}
      .dump());
  REQUIRE(d);
  recording_console console;
  auto out = execute_run(*d, {dir / "run", exec->get()}, console);
  INFO(console.text);
  CHECK(out.status == "FAILED");  // the server refuses: there is no repository
  auto expected = "Basic " + kiln::base64_encode("x-access-token:t0ken-value");
  bool sent = false;
  for (auto& r : server.requests())
    sent = sent || (r.headers.count("authorization") && r.headers.at("authorization") == expected);
  CHECK(sent);
  CHECK_FALSE(console.holds("t0ken-value"));
}
