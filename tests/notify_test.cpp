// Notifications end to end (issue 7), against a real `kiln up` with a
// local worker: signed build webhooks (retried, given up), e-mail over
// SMTP on change, and commit statuses to GitHub's and GitLab's APIs, all
// received by loopback servers.
#include "actors/webhooks.hpp"
#include "git_origin.hpp"
#include "kiln_up_fixture.hpp"
#include "support/http_receiver.hpp"
#include "support/smtp_receiver.hpp"

#include <nlohmann/json.hpp>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json get_json(kiln_up& up, const std::string& target) {
  auto r = up.api("GET", target);
  INFO(target << " -> " << r.status << " " << r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

void put(kiln_up& up, const std::string& target, const std::string& body,
         const std::string& type = "application/json") {
  auto r = up.api("PUT", target, body, {{"Content-Type", type}});
  INFO(target << " -> " << r.body);
  REQUIRE(r.status / 100 == 2);
}

void set_secret(kiln_up& up, const std::string& project, const std::string& key,
                const std::string& value) {
  put(up, "/v1/projects/" + project + "/secrets/" + key, value, "text/plain");
}

std::uint32_t trigger(kiln_up& up, const std::string& project, const json& params) {
  auto r = up.api("POST", "/v1/projects/" + project + "/builds",
                  json{{"trigger", "ci"}, {"params", params}}.dump());
  INFO(r.body);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["build"].get<std::uint32_t>();
}

// The build once it is complete and none of its notifications is pending.
json settled_build(kiln_up& up, const std::string& project, std::uint32_t n) {
  json b;
  bool settled = wait_until(
    [&] {
      b = get_json(up, "/v1/projects/" + project + "/builds/" + std::to_string(n));
      if (b["status"] == "RUNNING")
        return false;
      for (auto& x : b["notifications"])
        if (x["state"] == "pending" || x["state"] == "sending")
          return false;
      return true;
    },
    90s);
  INFO(b.dump(2));
  REQUIRE(settled);
  return b;
}

json notification(const json& build, const std::string& id) {
  for (auto& x : build["notifications"])
    if (x["id"] == id)
      return x;
  FAIL("build " << build["build"] << " has no notification " << id << ": " << build.dump());
  return {};
}

// The webhook deliveries a receiver got for build `n`, each checked to be
// signed with `key` over its timestamp and body.
std::vector<json> deliveries(const http_receiver& r, std::uint32_t n, const std::string& key) {
  std::vector<json> out;
  for (auto& req : r.requests()) {
    auto body = json::parse(req.body);
    if (body["build"] != n)
      continue;
    INFO(req.body);
    CHECK(req.method == "POST");
    CHECK(req.headers.at("x-kiln-signature")
          == kiln::domain::webhook_signature(key, req.headers.at("x-kiln-timestamp") + "." + req.body));
    out.push_back(body);
  }
  return out;
}

const char* mail_project = R"(timeout: 5
email:
  users: dev@example.com, lead@example.com
  on_change: true
webhooks:
  - url: {ok}/every
    secret_name: hookkey
  - url: {flaky}/failures
    secret_name: hookkey
    only_failures: true
  - url: {gone}/gone
    secret_name: hookkey
triggers:
  - name: ci
    type: simple
    runs:
      - name: check
        host-tag: "*"
        script: check
scripts:
  check: |
    #!/bin/sh
    echo "result wanted: $RESULT"
    test "$RESULT" = pass
)";

std::string with(std::string text, const std::string& key, const std::string& value) {
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
    text.replace(at, key.size(), value);
  return text;
}

} // namespace

TEST_CASE("a finished build's webhooks are signed and retried, and mail goes out on change",
          "[e2e][notify]") {
  http_receiver ok{200}, flaky{503}, gone{410};
  smtp_receiver smtp;
  kiln_up up{{"--workers", "1", "--executor", "host", "--notify-retry", "0.2", "--smtp", smtp.url(),
              "--smtp-from", "ci@kiln.test", "--public-url", "http://kiln.test:8080"}};
  std::string yaml = mail_project;
  for (auto [key, r] : {std::pair{"{ok}", &ok}, {"{flaky}", &flaky}, {"{gone}", &gone}})
    yaml = with(yaml, key, r->url());
  put(up, "/v1/projects/app", yaml, "application/yaml");
  set_secret(up, "app", "hookkey", "hook-s3cret");

  // Build 1 fails: every webhook, the failures-only one (503 until it is
  // fixed), the one whose endpoint is gone (410: given up at once), and a
  // mail: the trigger's first failure.
  auto b1 = trigger(up, "app", {{"RESULT", "fail"}});
  REQUIRE(wait_until([&] { return !flaky.requests().empty(); }, 90s));
  flaky.answer_with(200);
  auto build1 = settled_build(up, "app", b1);
  CHECK(build1["status"] == "FAILED");
  auto every = notification(build1, "webhook/0");
  CHECK(every["state"] == "delivered");
  CHECK(every["attempts"] == 1);
  CHECK(every["detail"] == "HTTP 200");
  auto failures = notification(build1, "webhook/1");
  CHECK(failures["state"] == "delivered");
  CHECK(failures["attempts"].get<int>() >= 2);  // 503 first, then retried
  auto dead = notification(build1, "webhook/2");
  CHECK(dead["state"] == "given_up");
  CHECK(dead["attempts"] == 1);
  CHECK_THAT(dead["detail"].get<std::string>(), Catch::StartsWith("HTTP 410"));
  CHECK(notification(build1, "email")["state"] == "delivered");

  auto got = deliveries(ok, b1, "hook-s3cret");
  REQUIRE(got.size() == 1);
  CHECK(got[0]["project"] == "app");
  CHECK(got[0]["status"] == "FAILED");
  CHECK(got[0]["runs"][0]["name"] == "check");
  CHECK(got[0]["runs"][0]["status"] == "FAILED");
  CHECK(got[0].count("notifications") == 0);
  CHECK(ok.requests()[0].headers.at("x-kiln-delivery") == "app/" + std::to_string(b1) + "/webhook/0");
  CHECK(deliveries(flaky, b1, "hook-s3cret").size() >= 2);
  CHECK(deliveries(gone, b1, "hook-s3cret").size() == 1);

  // Build 2 passes: the first success after a failure is mailed; the
  // failures-only webhook stays quiet.
  auto b2 = trigger(up, "app", {{"RESULT", "pass"}});
  auto build2 = settled_build(up, "app", b2);
  CHECK(build2["status"] == "PASSED");
  CHECK(notification(build2, "webhook/0")["state"] == "delivered");
  CHECK(notification(build2, "email")["state"] == "delivered");
  for (auto& x : build2["notifications"])
    CHECK(x["id"] != "webhook/1");

  // Build 3 passes again: no change, no mail.
  auto b3 = trigger(up, "app", {{"RESULT", "pass"}});
  auto build3 = settled_build(up, "app", b3);
  for (auto& x : build3["notifications"])
    CHECK(x["id"] != "email");
  CHECK(deliveries(ok, b3, "hook-s3cret").size() == 1);
  CHECK(deliveries(flaky, b2, "hook-s3cret").empty());

  auto mails = smtp.mails();
  INFO("commands the test SMTP server refused: " << smtp.refused().size());
  CHECK(smtp.refused().empty());
  REQUIRE(mails.size() == 2);
  CHECK(mails[0].from == "ci@kiln.test");
  CHECK(mails[0].to == std::vector<std::string>{"dev@example.com", "lead@example.com"});
  CHECK_THAT(mails[0].message,
             Catch::Contains("Subject: [kiln] app #" + std::to_string(b1) + " FAILED (broken)\r\n"));
  CHECK_THAT(mails[0].message, Catch::Contains("http://kiln.test:8080/v1/projects/app/builds/"
                                               + std::to_string(b1) + "/runs/check/console"));
  CHECK_THAT(mails[1].message,
             Catch::Contains("Subject: [kiln] app #" + std::to_string(b2) + " PASSED (fixed)\r\n"));

  // Each attempt and its outcome is in the log.
  http_stream feed{up.port, "/v1/events?after=0&filter=app." + std::to_string(b1) + ".>",
                   {{"Authorization", "Bearer " + up.admin}}};
  CHECK(feed.read_until("NotificationFinished"));
  CHECK(feed.read_until("HTTP 503"));
  CHECK(feed.read_until("HTTP 410"));
  CHECK(feed.read_until("\"delivered\":true"));
}

TEST_CASE("GitHub and GitLab builds post each run's status to the configured API",
          "[e2e][notify]") {
  http_receiver api{201};
  git_origin origin;
  auto sha = origin.push("first");
  kiln_up up{{"--workers", "1", "--executor", "host", "--notify-retry", "0.2", "--github-api",
              api.url() + "/gh", "--gitlab-api", api.url() + "/gl/api/v4"}};
  put(up, "/v1/projects/web", R"(timeout: 5
triggers:
  - name: gh
    type: github_pr
    runs:
      - name: unit
        host-tag: "*"
        script: ok
      - name: lint
        host-tag: "*"
        script: ok
  - name: gl
    type: gitlab_mr
    runs:
      - name: unit
        host-tag: "*"
        script: ok
scripts:
  ok: |
    #!/bin/sh
    test -f file.txt
)", "application/yaml");
  set_secret(up, "web", "webhook-key", "hook-key");
  set_secret(up, "web", "githubtok", "ghp_test");
  set_secret(up, "web", "gitlabtok", "glpat_test");
  auto url = "file://" + origin.bare.string();

  json gh_push{{"ref", "refs/heads/main"},
               {"before", std::string(40, '0').replace(0, 1, "1")},
               {"after", sha},
               {"repository", {{"name", "app"}, {"clone_url", url}, {"owner", {{"login", "acme"}}}}}};
  auto body = gh_push.dump();
  auto r = up.api("POST", "/v1/hooks/github/web", body,
                  {{"X-GitHub-Event", "push"},
                   {"X-Hub-Signature-256", kiln::domain::webhook_signature("hook-key", body)}}, "-");
  INFO(r.body);
  REQUIRE(r.status == 202);
  auto gh_build = json::parse(r.body)["builds"][0].get<std::uint32_t>();

  json gl_push{{"ref", "refs/heads/main"},
               {"before", std::string(40, '0').replace(0, 1, "1")},
               {"after", sha},
               {"project_id", 42},
               {"project", {{"git_http_url", url}}}};
  body = gl_push.dump();
  r = up.api("POST", "/v1/hooks/gitlab/web", body,
             {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "hook-key"}}, "-");
  INFO(r.body);
  REQUIRE(r.status == 202);
  auto gl_build = json::parse(r.body)["builds"][0].get<std::uint32_t>();

  auto gh = settled_build(up, "web", gh_build);
  auto gl = settled_build(up, "web", gl_build);
  CHECK(gh["status"] == "PASSED");
  CHECK(gl["status"] == "PASSED");

  // Per run, in order: perhaps "pending" (skipped when the run ended before
  // it went out), then the final state, which comes last.
  std::map<std::string, std::vector<std::string>> github, gitlab;
  for (auto& req : api.requests()) {
    INFO(req.target << " " << req.body);
    auto status = json::parse(req.body);
    CHECK(req.method == "POST");
    if (req.target == "/gh/repos/acme/app/statuses/" + sha) {
      CHECK(req.headers.at("authorization") == "token ghp_test");
      CHECK(status["target_url"].get<std::string>().ends_with(
        "/v1/projects/web/builds/" + std::to_string(gh_build) + "/runs/" + status["context"].get<std::string>()));
      github[status["context"]].push_back(status["state"]);
    } else if (req.target == "/gl/api/v4/projects/42/statuses/" + sha) {
      CHECK(req.headers.at("private-token") == "glpat_test");
      gitlab[status["name"]].push_back(status["state"]);
    } else {
      FAIL("a status to an unexpected place: " << req.target);
    }
  }
  REQUIRE(github.size() == 2);
  for (auto& [run, states] : github) {
    INFO(run);
    REQUIRE(!states.empty());
    CHECK(states.back() == "success");
    CHECK(states.size() <= 2);
    if (states.size() == 2)
      CHECK(states.front() == "pending");
  }
  REQUIRE(gitlab.size() == 1);
  CHECK(gitlab["unit"].back() == "success");
}

TEST_CASE("a webhook still failing when kiln stops is delivered after it starts again",
          "[e2e][notify]") {
  http_receiver hook{503};
  kiln_up up{{"--workers", "1", "--executor", "host", "--notify-retry", "0.2"}};
  std::string rest = mail_project;
  put(up, "/v1/projects/app",
      "timeout: 5\nwebhooks:\n  - url: " + hook.url() + "/retry\n    secret_name: hookkey\n"
        + rest.substr(rest.find("triggers:")),
      "application/yaml");
  set_secret(up, "app", "hookkey", "k");
  auto n = trigger(up, "app", {{"RESULT", "pass"}});
  REQUIRE(wait_until([&] { return hook.requests().size() >= 2; }, 90s));
  up.restart([&] {
    hook.answer_with(200);
    return true;
  });
  auto b = settled_build(up, "app", n);
  auto x = notification(b, "webhook/0");
  CHECK(x["state"] == "delivered");
  CHECK(x["attempts"].get<int>() >= 3);
  auto got = deliveries(hook, n, "k");
  CHECK(got.size() == x["attempts"].get<std::size_t>());
  for (auto& r : hook.requests())
    CHECK(r.headers.at("x-kiln-delivery") == "app/" + std::to_string(n) + "/webhook/0");
}

TEST_CASE("an e-mail with no SMTP server configured is given up, saying so", "[e2e][notify]") {
  kiln_up up{{"--workers", "1", "--executor", "host", "--notify-retry", "0.2"}};
  std::string rest = mail_project;
  put(up, "/v1/projects/app",
      "timeout: 5\nemail:\n  users: dev@example.com\n" + rest.substr(rest.find("triggers:")),
      "application/yaml");
  auto n = trigger(up, "app", {{"RESULT", "fail"}});
  auto mail = notification(settled_build(up, "app", n), "email");
  CHECK(mail["state"] == "given_up");
  CHECK(mail["attempts"] == 1);
  CHECK_THAT(mail["detail"].get<std::string>(), Catch::Contains("no SMTP server is configured"));
}
