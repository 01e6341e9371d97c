// Notifications, pure: what a build's outcome plans, the build aggregate's
// claims and outcomes, the read model's commit statuses, which attempts
// are due, and the exact requests and mails.
#include "actors/build_aggregate.hpp"
#include "actors/notifications.hpp"
#include "actors/webhooks.hpp"
#include "aggregate_fixture.hpp"
#include "model_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;
using json = nlohmann::json;

namespace {

const char* notify_yaml = R"(timeout: 5
email:
  users: "dev@example.com, ops@example.com"
  only_failures: true
webhooks:
  - url: http://hooks.example/all
    secret_name: hookkey
  - url: http://hooks.example/failures
    secret_name: hookkey
    only_failures: true
triggers:
  - name: ci
    type: simple
    runs:
      - name: a
        host-tag: linux
        script: s
  - name: nightly
    type: simple
    email:
      users: qa@example.com
      on_change: true
    webhooks:
      - url: https://nightly.example/hook
        secret_name: nightkey
    runs:
      - name: a
        host-tag: linux
        script: s
scripts:
  s: echo
)";

project_definition definition(const char* yaml = notify_yaml) {
  auto def = parse_project_definition(yaml);
  INFO((def ? "" : def.error().message));
  REQUIRE(def);
  return *def;
}

std::vector<std::string> ids(const std::vector<notification_planned>& planned) {
  std::vector<std::string> out;
  for (auto& p : planned)
    out.push_back(p.id);
  return out;
}

build::state completed_build(std::vector<notification_planned> planned) {
  build::state s;
  build_created facts;
  facts.project = "p";
  facts.number = 1;
  facts.runs = {"a"};
  auto created = build::decide(s, build::create_build{facts});
  REQUIRE(created);
  for (auto& e : *created)
    build::apply(s, e);
  auto done = build::decide(s, build::complete_build{status::failed, std::move(planned)});
  REQUIRE(done);
  for (auto& e : *done)
    build::apply(s, e);
  return s;
}

void apply_all(build::state& s, const result<std::vector<event>>& r) {
  REQUIRE(r);
  for (auto& e : *r)
    build::apply(s, e);
}

} // namespace

TEST_CASE("notifications: a build's outcome plans the trigger's own, else the project's") {
  auto def = definition();
  // The project's: every build to the first webhook, failures to the second and by mail.
  CHECK(ids(plan_notifications(def, "ci", status::passed, std::nullopt))
        == std::vector<std::string>{"webhook/0"});
  auto failed = plan_notifications(def, "ci", status::failed, status::failed);
  CHECK(ids(failed) == std::vector<std::string>{"webhook/0", "webhook/1", "email"});
  auto spec = json::parse(failed[2].spec);
  CHECK(spec["to"] == json::array({"dev@example.com", "ops@example.com"}));
  CHECK(spec["previous"] == "FAILED");
  CHECK(json::parse(failed[1].spec)["url"] == "http://hooks.example/failures");
  CHECK(failed[0].kind == "webhook");
  CHECK(failed[2].kind == "email");

  // The trigger's own replace the project's; its mail is on change only.
  auto first_failure = plan_notifications(def, "nightly", status::failed, status::passed);
  CHECK(ids(first_failure) == std::vector<std::string>{"webhook/0", "email"});
  CHECK(json::parse(first_failure[0].spec)["secret_name"] == "nightkey");
  CHECK(ids(plan_notifications(def, "nightly", status::failed, status::failed))
        == std::vector<std::string>{"webhook/0"});  // still failing: no mail
  CHECK(ids(plan_notifications(def, "nightly", status::passed, status::failed))
        == std::vector<std::string>{"webhook/0", "email"});  // fixed
  CHECK(ids(plan_notifications(def, "nightly", status::passed, status::passed))
        == std::vector<std::string>{"webhook/0"});
  CHECK(ids(plan_notifications(def, "nightly", status::failed, std::nullopt))
        == std::vector<std::string>{"webhook/0", "email"});  // a first build that fails
  CHECK(ids(plan_notifications(def, "nightly", status::passed, std::nullopt))
        == std::vector<std::string>{"webhook/0"});
}

TEST_CASE("notifications: a bad address or webhook URL is refused with its line and column") {
  auto bad_mail = parse_project_definition(simple_yaml_with(R"(email:
  users: "dev@example.com, nobody"
)"));
  REQUIRE_FALSE(bad_mail);
  CHECK_THAT(bad_mail.error().message, Catch::StartsWith("line 3, column 10: ")
                                         && Catch::Contains("'nobody'"));
  auto bad_url = parse_project_definition(simple_yaml_with(R"(webhooks:
  - url: ftp://example.com/x
    secret_name: k
)"));
  REQUIRE_FALSE(bad_url);
  CHECK_THAT(bad_url.error().message, Catch::StartsWith("line 3, column 10: ")
                                        && Catch::Contains("http:// or https://"));
}

TEST_CASE("notifications: the previous result is the trigger's last completed build before it") {
  model_builder m;
  m.project("p", simple_yaml);
  m.build("p", 1, {"a"});
  m.add(streams::build("p", 1), {build_completed{status::failed}});
  m.build("p", 2, {"a"});
  m.add(streams::build("p", 2), {build_completed{status::cancelled}});
  m.build("p", 3, {"a"});
  auto p = m.model.project("p");
  CHECK(previous_result(*p, "ci", 3) == status::failed);  // a cancelled build says nothing
  CHECK(previous_result(*p, "ci", 1) == std::nullopt);
  CHECK(previous_result(*p, "other", 3) == std::nullopt);
}

TEST_CASE("notifications: an attempt is claimed with a lease, then finished with its outcome") {
  auto s = completed_build({{"webhook/0", "webhook", "{}"}, {"email", "email", "{}"}});
  REQUIRE(s.notifications.size() == 2);

  CHECK(refusal(build::decide, s, build::command{build::start_notification{"webhook/9", 1000}})
        == "not_found");
  auto start = build::decide(s, build::start_notification{"webhook/0", 1000, 60'000});
  REQUIRE(start);
  REQUIRE(start->size() == 1);
  CHECK(std::get<notification_started>((*start)[0]) == notification_started{"webhook/0", 1, 61'000});
  apply_all(s, start);
  // Under way: no second claim until the lease runs out (its sender died).
  CHECK(refusal(build::decide, s, build::command{build::start_notification{"webhook/0", 30'000}})
        == "not_due");
  auto again = build::decide(s, build::start_notification{"webhook/0", 61'000, 60'000});
  REQUIRE(again);
  CHECK(std::get<notification_started>((*again)[0]).attempt == 2);
  apply_all(s, again);

  // The dead sender's late outcome is not the latest attempt's.
  CHECK(refusal(build::decide, s,
                build::command{build::finish_notification{"webhook/0", 1, true, "HTTP 200", 0}})
        == "not_due");
  apply_all(s, build::decide(s, build::finish_notification{"webhook/0", 2, false, "HTTP 503",
                                                            200'000}));
  CHECK(s.notifications["webhook/0"].retry_at_ms == 200'000);
  CHECK(refusal(build::decide, s, build::command{build::start_notification{"webhook/0", 199'999}})
        == "not_due");
  apply_all(s, build::decide(s, build::start_notification{"webhook/0", 200'000}));
  apply_all(s, build::decide(s, build::finish_notification{"webhook/0", 3, true, "HTTP 200", 0}));
  CHECK(s.notifications["webhook/0"].delivered);
  CHECK(s.notifications["webhook/0"].settled());
  CHECK(refusal(build::decide, s, build::command{build::start_notification{"webhook/0", 999'999}})
        == "not_due");
  // A retried finish changes nothing.
  auto repeat = build::decide(s, build::finish_notification{"webhook/0", 3, true, "HTTP 200", 0});
  REQUIRE(repeat);
  CHECK(repeat->empty());

  // Given up: no retry time.
  apply_all(s, build::decide(s, build::start_notification{"email", 1000}));
  apply_all(s, build::decide(s, build::finish_notification{"email", 1, false, "SMTP 550", 0}));
  CHECK(s.notifications["email"].abandoned);
  CHECK(refusal(build::decide, s, build::command{build::start_notification{"email", 999'999}})
        == "not_due");

  // Commit statuses are not planned; the aggregate takes their claims.
  CHECK(build::decide(s, build::start_notification{"status/a/1/done", 1000}));
  // A planned notification cannot pose as one.
  build::state fresh;
  build_created facts;
  facts.runs = {"a"};
  apply_all(fresh, build::decide(fresh, build::create_build{facts}));
  CHECK(refusal(build::decide, fresh,
                build::command{build::complete_build{status::passed, {{"status/x", "webhook", ""}}}})
        == "invalid_argument");
}

TEST_CASE("notifications: retries back off threefold and stop at the last attempt") {
  retry_policy p{10'000, 4, 60'000};
  CHECK(retry_at(p, 1, 1'000, false) == 11'000);
  CHECK(retry_at(p, 2, 1'000, false) == 31'000);
  CHECK(retry_at(p, 3, 1'000, false) == 91'000);
  CHECK(retry_at(p, 4, 1'000, false) == 0);
  CHECK(retry_at(p, 1, 1'000, true) == 0);
  CHECK(permanent_http_status(404));
  CHECK(permanent_http_status(401));
  CHECK_FALSE(permanent_http_status(429));
  CHECK_FALSE(permanent_http_status(408));
  CHECK_FALSE(permanent_http_status(500));
  CHECK_FALSE(permanent_http_status(503));
}

TEST_CASE("notifications: a GitHub build's runs get a status when queued and when done, in order") {
  model_builder m;
  m.project("p", simple_yaml);
  build_created b;
  b.project = "p";
  b.number = 1;
  b.trigger = "ci";
  b.runs = {"a", "b"};
  b.params = {{"GH_OWNER", "acme"}, {"GH_REPO", "app"}, {"GIT_SHA", "c0ffee"}};
  m.add(streams::build("p", 1), {b});
  m.add(streams::run("p", 1, "a"), {run_queued{"p", 1, "a", "", "{}", 1, 60}});
  m.add(streams::run("p", 1, "b"), {run_queued{"p", 1, "b", "", "{}", 1, 60}});
  auto due = due_notifications(m.model, 0);
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == "status/a/1/queued");
  CHECK(due[0].kind == "github_status");
  CHECK(json::parse(due[0].spec) == json{{"run", "a"}, {"state", "QUEUED"}});
  CHECK(due[1].id == "status/b/1/queued");

  // a's pending status is under way when a ends: its end waits behind it.
  m.add(streams::build("p", 1), {notification_started{"status/a/1/queued", 1, 5'000}});
  m.assign("p", 1, "a", "w");
  m.add(streams::run("p", 1, "a"), {run_started{"w"}, run_completed{status::passed, 0, ""}});
  // b ends before its pending status went out: only the final one is sent.
  m.assign("p", 1, "b", "w");
  m.add(streams::run("p", 1, "b"), {run_started{"w"}, run_completed{status::failed, 1, ""}});
  due = due_notifications(m.model, 1'000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].id == "status/b/1/done");
  CHECK(json::parse(due[0].spec)["state"] == "FAILED");

  m.add(streams::build("p", 1),
        {notification_finished{"status/a/1/queued", 1, true, "HTTP 201", 0}});
  due = due_notifications(m.model, 1'000);
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == "status/a/1/done");
  // A lease that ran out makes an attempt due again.
  m.add(streams::build("p", 1), {notification_started{"status/a/1/done", 1, 5'000},
                                 notification_started{"status/b/1/done", 1, 5'000}});
  CHECK(due_notifications(m.model, 4'999).empty());
  CHECK(due_notifications(m.model, 5'000).size() == 2);
  m.add(streams::build("p", 1), {notification_finished{"status/a/1/done", 1, true, "HTTP 201", 0},
                                 notification_finished{"status/b/1/done", 1, false, "HTTP 500", 9'000}});
  CHECK(m.model.notifying().size() == 1);
  CHECK(due_notifications(m.model, 8'999).empty());
  CHECK(due_notifications(m.model, 9'000).size() == 1);

  // The snapshot keeps it all, the pending set included.
  auto back = read_model::decode(m.model.encode());
  REQUIRE(back);
  CHECK(back->notifying() == m.model.notifying());
  CHECK(due_notifications(*back, 9'000).size() == 1);

  m.add(streams::build("p", 1), {notification_started{"status/b/1/done", 2, 20'000},
                                 notification_finished{"status/b/1/done", 2, true, "HTTP 201", 0}});
  CHECK(m.model.notifying().empty());
  auto& n = m.model.build("p", 1)->notifications;
  CHECK(n.at("status/b/1/queued").superseded);
  CHECK(n.at("status/b/1/done").detail == "HTTP 201");

  // A build that names no repository gets no statuses.
  m.build("p", 2, {"a"});
  CHECK(m.model.build("p", 2)->notifications.empty());
}

TEST_CASE("notifications: a webhook delivery is the build JSON signed with its timestamp") {
  due_notification n{"p", 7, "webhook/0", "webhook",
                     json{{"url", "http://127.0.0.1:9/x"}, {"secret_name", "hookkey"}}.dump()};
  std::string body = R"({"project":"p","build":7})";
  auto req = webhook_delivery(n, body, {{"hookkey", "s3cret"}}, 1'800'000'000);
  REQUIRE(req);
  CHECK(req->url == "http://127.0.0.1:9/x");
  CHECK(req->body == body);
  std::map<std::string, std::string> h(req->headers.begin(), req->headers.end());
  CHECK(h["X-Kiln-Timestamp"] == "1800000000");
  CHECK(h["X-Kiln-Signature"] == webhook_signature("s3cret", "1800000000." + body));
  CHECK(h["X-Kiln-Delivery"] == "p/7/webhook/0");
  CHECK(secrets_needed(n) == std::vector<std::string>{"hookkey"});

  auto missing = webhook_delivery(n, body, {}, 1);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("hookkey"));
}

TEST_CASE("notifications: commit statuses go to the configured GitHub or GitLab API") {
  build_summary b;
  b.project = "p";
  b.number = 3;
  b.facts.params = {{"GH_OWNER", "acme"}, {"GH_REPO", "app"}, {"GIT_SHA", "c0ffee"}};
  run_summary r;
  r.name = "unit";
  r.status = status::failed;
  r.started_ns = 1'000'000'000;
  r.finished_ns = 5'000'000'000;
  b.runs = {r};
  notify_settings s;
  s.public_url = "http://kiln.example";
  s.github_api = "http://127.0.0.1:1/api";
  due_notification n{"p", 3, "status/unit/1/done", "github_status",
                     json{{"run", "unit"}, {"state", "FAILED"}}.dump()};
  auto req = status_delivery(n, b, {{"githubtok", "ghp_x"}}, s);
  REQUIRE(req);
  CHECK(req->url == "http://127.0.0.1:1/api/repos/acme/app/statuses/c0ffee");
  std::map<std::string, std::string> h(req->headers.begin(), req->headers.end());
  CHECK(h["Authorization"] == "token ghp_x");
  auto body = json::parse(req->body);
  CHECK(body["state"] == "failure");
  CHECK(body["context"] == "unit");
  CHECK(body["description"] == "FAILED in 4 s");
  CHECK(body["target_url"] == "http://kiln.example/v1/projects/p/builds/3/runs/unit");
  CHECK_FALSE(status_delivery(n, b, {}, s));  // no githubtok

  b.facts.params = {{"GL_PROJECT_ID", "42"}, {"GIT_SHA", "c0ffee"}};
  build_created facts;
  facts.params = b.facts.params;
  CHECK(commit_status_kind(facts) == "gitlab_status");
  s.gitlab_api = "http://127.0.0.1:2/api/v4";
  due_notification g{"p", 3, "status/unit/1/queued", "gitlab_status",
                     json{{"run", "unit"}, {"state", "QUEUED"}}.dump()};
  auto greq = status_delivery(g, b, {{"gitlabtok", "glpat"}}, s);
  REQUIRE(greq);
  CHECK(greq->url == "http://127.0.0.1:2/api/v4/projects/42/statuses/c0ffee");
  std::map<std::string, std::string> gh(greq->headers.begin(), greq->headers.end());
  CHECK(gh["PRIVATE-TOKEN"] == "glpat");
  CHECK(json::parse(greq->body)["state"] == "pending");
  CHECK(json::parse(greq->body)["name"] == "unit");
}

TEST_CASE("notifications: a mail names the build, what changed and the failed runs' consoles") {
  build_summary b;
  b.project = "app";
  b.number = 12;
  b.completed = true;
  b.result = status::failed;
  b.facts.trigger = "ci";
  b.facts.reason = "push to refs/heads/main";
  b.facts.ref = "refs/heads/main";
  b.facts.sha = "c0ffee";
  run_summary unit, lint;
  unit.name = "unit";
  unit.status = status::failed;
  lint.name = "lint";
  lint.status = status::passed;
  b.runs = {unit, lint};
  notify_settings s;
  s.public_url = "http://kiln.example";
  s.mail_from = "ci@example.com";
  due_notification n{"app", 12, "email", "email",
                     json{{"to", {"dev@example.com", "ops@example.com"}}, {"previous", "PASSED"}}.dump()};
  auto mail = mail_delivery(n, b, s, 1'800'000'000);
  REQUIRE(mail);
  CHECK(mail->to == std::vector<std::string>{"dev@example.com", "ops@example.com"});
  auto& text = mail->message;
  CHECK_THAT(text, Catch::Contains("From: kiln <ci@example.com>\r\n"));
  CHECK_THAT(text, Catch::Contains("To: dev@example.com, ops@example.com\r\n"));
  CHECK_THAT(text, Catch::Contains("Subject: [kiln] app #12 FAILED (broken)\r\n"));
  CHECK_THAT(text, Catch::Contains("Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
  CHECK_THAT(text, Catch::Contains("http://kiln.example/v1/projects/app/builds/12/runs/unit/console"));
  CHECK_THAT(text, !Catch::Contains("runs/lint/console"));

  b.result = status::passed;
  n.spec = json{{"to", {"dev@example.com"}}, {"previous", "FAILED"}}.dump();
  CHECK_THAT(mail_delivery(n, b, s, 0)->message, Catch::Contains("Subject: [kiln] app #12 PASSED (fixed)\r\n"));
  b.result = status::failed;
  CHECK_THAT(mail_delivery(n, b, s, 0)->message,
             Catch::Contains("Subject: [kiln] app #12 FAILED (still failing)\r\n"));
}
