// Triggers that start builds by themselves (issue 7), against a real
// `kiln up`: cron schedules across a restart, git polling of real
// repositories (file:// and `git daemon` on loopback).
#include "events/base64.hpp"
#include "git_origin.hpp"
#include "kiln_up_fixture.hpp"
#include "support/http_receiver.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <ctime>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <set>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json builds_of(kiln_up& up, const std::string& project) {
  auto r = up.api("GET", "/v1/projects/" + project + "/builds?limit=500");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

void put_project(kiln_up& up, const std::string& name, const std::string& yaml) {
  auto r = up.api("PUT", "/v1/projects/" + name, yaml, {{"Content-Type", "application/yaml"}});
  INFO(r.body);
  REQUIRE((r.status == 201 || r.status == 200));
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

// "cron: the slot of 2026-11-22T13:40:05Z" -> its unix time.
std::int64_t slot_of(const json& build) {
  auto reason = build.value("reason", "");
  auto at = reason.find("slot of ");
  REQUIRE(at != std::string::npos);
  std::tm tm{};
  REQUIRE(strptime(reason.c_str() + at + 8, "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return timegm(&tm);
}

std::vector<std::int64_t> cron_slots(kiln_up& up) {
  std::vector<std::int64_t> out;
  for (auto& b : builds_of(up, "tick")) {
    CHECK(b["trigger"] == "every5s");
    out.push_back(slot_of(b));
  }
  std::sort(out.begin(), out.end());
  return out;
}

const char* cron_project = R"(timeout: 5
triggers:
  - name: every5s
    type: cron
    schedule: "*/5 * * * * *"
    runs:
      - name: r
        host-tag: nowhere
        script: s
scripts:
  s: "true"
)";

} // namespace

TEST_CASE("a cron trigger fires on its slots, and a restart neither repeats one nor makes up each missed one", "[triggers]") {
  kiln_up up;
  put_project(up, "tick", cron_project);
  // A new trigger starts counting from its first slot: two builds, 5 s apart.
  REQUIRE(wait_until([&] { return builds_of(up, "tick").size() >= 2; }, 30s));
  auto before = cron_slots(up);
  CHECK(before[1] - before[0] == 5);
  for (auto s : before)
    CHECK(s % 5 == 0);

  // Down for 12 s: two or three slots pass with no core.
  auto stopped = unix_now();
  std::int64_t restarting = 0;
  up.restart([&] {
    restarting = unix_now();
    return restarting >= stopped + 12;
  });
  auto ready = unix_now();
  REQUIRE(wait_until([&] { return cron_slots(up).back() > ready; }, 30s));

  auto all = cron_slots(up);
  INFO("slots: " << json(all).dump() << " stopped " << stopped << " restarting " << restarting
                 << " ready " << ready);
  CHECK(std::set<std::int64_t>(all.begin(), all.end()).size() == all.size());  // none twice
  auto last_before = *std::max_element(before.begin(), before.end());
  std::size_t made_up = 0, at_start = 0;
  for (auto s : all) {
    made_up += s > last_before && s < restarting - 5;  // earlier missed slots: none
    at_start += s > last_before && s <= ready;
  }
  CHECK(made_up == 0);
  CHECK(at_start >= 1);  // the latest missed slot, built at start
}

namespace {

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

json git_refs_of(kiln_up& up, const std::string& project) {
  auto r = up.api("GET", "/v1/projects/" + project);
  REQUIRE(r.status == 200);
  return json::parse(r.body).value("git_refs", json::object());
}

// Builds of `trigger`, oldest first.
std::vector<json> builds_by(kiln_up& up, const std::string& project, const std::string& trigger) {
  std::vector<json> out;
  for (auto& b : builds_of(up, project))
    if (b["trigger"] == trigger)
      out.insert(out.begin(), b);
  return out;
}

} // namespace

TEST_CASE("a git push makes exactly one build per polling trigger, over file:// and git daemon, also across a restart", "[triggers]") {
  git_origin origin;
  auto first = origin.push("first");
  auto port = free_port();
  // git-daemon itself, not `git daemon`: the wrapper would leave it behind when killed.
  child_process daemon{{{"/usr/lib/git-core/git-daemon", "--reuseaddr", "--export-all",
                         "--listen=127.0.0.1", "--port=" + std::to_string(port),
                         "--base-path=" + origin.dir.path().string(), origin.dir.path().string()}}};
  auto daemon_url = "git://127.0.0.1:" + std::to_string(port) + "/origin.git";
  REQUIRE(wait_until([&] { return run({"/usr/bin/git", "ls-remote", daemon_url}).first == 0; }, 30s));
  auto file_url = "file://" + origin.bare.string();

  kiln_up up;
  put_project(up, "gitp", R"(timeout: 5
triggers:
  - name: by-file
    type: git_poller
    poll-interval: 1
    params:
      GIT_URL: ")" + file_url + R"("
      GIT_POLL_REFS: "refs/heads/main, refs/heads/v1.*"
    runs: [{name: r, host-tag: nowhere, script: s}]
  - name: by-daemon
    type: git_poller
    poll-interval: 1
    params:
      GIT_URL: ")" + daemon_url + R"("
      GIT_POLL_REFS: "refs/heads/main"
    runs: [{name: r, host-tag: nowhere, script: s}]
scripts:
  s: "true"
)");
  // The first sighting records the ref and starts nothing.
  REQUIRE(wait_until([&] {
    auto refs = git_refs_of(up, "gitp");
    return refs.contains("by-file") && refs.contains("by-daemon");
  }, 30s));
  CHECK(git_refs_of(up, "gitp")["by-file"][file_url]["refs/heads/main"] == first);
  CHECK(builds_of(up, "gitp").empty());

  auto second = origin.push("second");
  REQUIRE(wait_until([&] { return builds_of(up, "gitp").size() >= 2; }, 30s));
  for (auto trigger : {"by-file", "by-daemon"}) {
    auto made = builds_by(up, "gitp", trigger);
    REQUIRE(made.size() == 1);
    CHECK(made[0]["sha"] == second);
    CHECK(made[0]["ref"] == "refs/heads/main");
    CHECK(made[0]["params"]["GIT_SHA"] == second);
    CHECK(made[0]["params"]["GIT_OLD_SHA"] == first);
    CHECK(made[0]["params"]["GIT_REF"] == "refs/heads/main");
  }
  CHECK(builds_by(up, "gitp", "by-daemon")[0]["params"]["GIT_URL"] == daemon_url);

  // [skip ci] is recorded and builds nothing; a branch outside the globs is not seen.
  auto skipped = origin.push("docs only [skip ci]");
  origin.push("elsewhere", "feature");
  REQUIRE(wait_until([&] {
    auto refs = git_refs_of(up, "gitp");
    return refs["by-file"][file_url]["refs/heads/main"] == skipped
           && refs["by-daemon"][daemon_url]["refs/heads/main"] == skipped;
  }, 30s));
  CHECK(git_refs_of(up, "gitp")["by-file"][file_url].size() == 1);

  // Pushed while kiln is down: one build after the restart, none again for earlier pushes.
  auto stopped = unix_now();
  std::string third;
  up.restart([&] {
    if (third.empty())
      third = origin.push("while down");
    return unix_now() >= stopped + 2;
  });
  REQUIRE(wait_until([&] { return builds_by(up, "gitp", "by-file").size() >= 2 && builds_by(up, "gitp", "by-daemon").size() >= 2; }, 30s));
  // A few more polls, then the count must still hold.
  auto settled = unix_now() + 3;
  REQUIRE(wait_until([&] { return unix_now() >= settled; }, 10s));
  for (auto trigger : {"by-file", "by-daemon"}) {
    auto made = builds_by(up, "gitp", trigger);
    REQUIRE(made.size() == 2);
    CHECK(made[1]["sha"] == third);
    CHECK(made[1]["params"]["GIT_OLD_SHA"] == skipped);
  }
}

TEST_CASE("a git_poller with git-token sends the named secret as git's credentials", "[triggers]") {
  http_receiver server{401};  // asks for credentials, like a private repository
  kiln_up up;
  put_project(up, "private", R"(timeout: 5
triggers:
  - name: poll
    type: git_poller
    poll-interval: 1
    git-token: repo-token
    params:
      GIT_URL: ")" + server.url() + R"(/acme/app.git"
    runs: [{name: r, host-tag: nowhere, script: s}]
scripts:
  s: "true"
)");
  REQUIRE(up.api("PUT", "/v1/projects/private/secrets/repo-token", "t0ken-value",
                 {{"Content-Type", "text/plain"}}).status == 200);
  auto expected = "Basic " + kiln::base64_encode("x-access-token:t0ken-value");
  REQUIRE(wait_until([&] {
    for (auto& r : server.requests())
      if (r.headers.count("authorization") && r.headers.at("authorization") == expected)
        return r.target.starts_with("/acme/app.git/info/refs");
    return false;
  }, 30s));
  // Refused by the server: nothing recorded, nothing built.
  CHECK(builds_of(up, "private").empty());
  CHECK(git_refs_of(up, "private").empty());
}
