// Incoming webhooks: the pure decision (signatures, events, fork gating)
// and, against a real `kiln up`, the HTTP answers and the builds made.
#include "actors/webhooks.hpp"
#include "kiln_up_fixture.hpp"

#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::domain;
using namespace kiln::test;
using json = nlohmann::json;

namespace {

const char* hooks_yaml = R"(timeout: 5
triggers:
  - name: pr
    type: github_pr
    params: {GH_BRANCH: "main, release"}
    runs: [{name: unit, host-tag: hooks, script: s}]
  - name: mr
    type: gitlab_mr
    runs: [{name: unit, host-tag: hooks, script: s}]
  - name: hook
    type: webhook
    webhook-secret: generic-key
    runs: [{name: unit, host-tag: hooks, script: s}]
scripts:
  s: "true"
)";

project_definition hooks_definition() {
  auto d = parse_project_definition(hooks_yaml);
  REQUIRE(d);
  return *d;
}

const std::map<std::string, std::string> keys{{"webhook-key", "gh-secret"}, {"generic-key", "g-secret"}};

json pull_request(const std::string& action, bool fork, std::vector<std::string> labels = {}) {
  json l = json::array();
  for (auto& name : labels)
    l.push_back({{"name", name}});
  return {{"action", action},
          {"number", 7},
          {"pull_request",
           {{"number", 7},
            {"labels", l},
            {"head", {{"sha", "abc123"}, {"repo", {{"full_name", fork ? "mallory/app" : "acme/app"},
                                                    {"clone_url", "https://example/h.git"}}}}},
            {"base", {{"ref", "main"}, {"sha", "base99"},
                      {"repo", {{"full_name", "acme/app"}, {"name", "app"}, {"owner", {{"login", "acme"}}}}}}}}}};
}

webhook_request github(const std::string& event, const std::string& body, const std::string& key = "gh-secret") {
  return {"github", {{"x-github-event", event}, {"x-hub-signature-256", webhook_signature(key, body)}}, body, "", 1'000'000};
}

webhook_request generic(const std::string& body, std::int64_t sent, std::int64_t now, const std::string& key = "g-secret") {
  auto ts = std::to_string(sent);
  return {"generic", {{"x-kiln-timestamp", ts}, {"x-kiln-signature", webhook_signature(key, ts + "." + body)}},
          body, "", now};
}

} // namespace

TEST_CASE("webhook signatures: GitHub HMAC, GitLab token, generic HMAC with a replay window", "[webhooks]") {
  auto def = hooks_definition();
  auto body = pull_request("opened", false).dump();
  CHECK(decide_webhook(def, keys, github("pull_request", body)));
  auto forged = github("pull_request", body, "not-the-key");
  CHECK(decide_webhook(def, keys, forged).error().code == "unauthorized");
  auto tampered = github("pull_request", body);
  tampered.body += " ";
  CHECK(decide_webhook(def, keys, tampered).error().code == "unauthorized");
  auto unsigned_request = github("pull_request", body);
  unsigned_request.headers.erase("x-hub-signature-256");
  CHECK(decide_webhook(def, keys, unsigned_request).error().message.find("missing") != std::string::npos);

  webhook_request lab{"gitlab", {{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", "gh-secret"}},
                      R"({"ref":"refs/heads/main","before":"0a","after":"1b","project":{"git_http_url":"https://gl/x.git"}})", "", 0};
  auto pushed = decide_webhook(def, keys, lab);
  REQUIRE(pushed);
  REQUIRE(pushed->builds.size() == 1);
  CHECK(pushed->builds[0].params.at("GIT_SHA") == "1b");
  lab.headers["x-gitlab-token"] = "gh-secreT";
  CHECK(decide_webhook(def, keys, lab).error().code == "unauthorized");

  auto now = 1'800'000'000;
  auto fresh = decide_webhook(def, keys, generic(R"({"params":{"A":"1"},"ref":"v1"})", now - 10, now));
  REQUIRE(fresh);
  REQUIRE(fresh->builds.size() == 1);
  CHECK(fresh->builds[0].trigger == "hook");
  CHECK(fresh->builds[0].params.at("A") == "1");
  auto replayed = decide_webhook(def, keys, generic("{}", now - 301, now));
  CHECK(replayed.error().code == "unauthorized");
  CHECK(replayed.error().message.find("replay") != std::string::npos);
  auto wrong_key = decide_webhook(def, keys, generic("{}", now, now, "gh-secret"));
  CHECK(wrong_key.error().code == "unauthorized");
  // The untrusted flag cannot be smuggled in through params.
  auto smuggled = decide_webhook(def, keys, generic(R"({"params":{"H_UNTRUSTED":"0"}})", now, now));
  CHECK_FALSE(smuggled->builds[0].params.count("H_UNTRUSTED"));
}

TEST_CASE("GitHub events: ping, push by branch, pull requests gated by ok-to-test from forks", "[webhooks]") {
  auto def = hooks_definition();
  auto ping = decide_webhook(def, keys, github("ping", R"({"zen":"hi"})"));
  REQUIRE(ping);
  CHECK(ping->builds.empty());
  CHECK(ping->note == "pong");

  auto push = decide_webhook(def, keys, github("push", R"({"ref":"refs/heads/release","before":"a","after":"b","repository":{"clone_url":"https://example/a.git"}})"));
  REQUIRE(push);
  REQUIRE(push->builds.size() == 1);
  CHECK(push->builds[0].params.at("GIT_REF") == "refs/heads/release");
  auto elsewhere = decide_webhook(def, keys, github("push", R"({"ref":"refs/heads/dev","before":"a","after":"b","repository":{}})"));
  CHECK(elsewhere->builds.empty());

  auto own = decide_webhook(def, keys, github("pull_request", pull_request("synchronize", false).dump()));
  REQUIRE(own);
  REQUIRE(own->builds.size() == 1);
  auto& p = own->builds[0].params;
  CHECK(p.at("GH_PRNUM") == "7");
  CHECK(p.at("GH_BRANCH") == "main");
  CHECK(p.at("GIT_SHA") == "abc123");
  CHECK(p.at("GIT_SHA_BASE") == "base99");
  CHECK(own->builds[0].ref == "refs/pull/7/head");
  CHECK_FALSE(p.count("H_UNTRUSTED"));

  auto gated = decide_webhook(def, keys, github("pull_request", pull_request("opened", true).dump()));
  REQUIRE(gated);
  CHECK(gated->builds.empty());
  CHECK(gated->note.find("ok-to-test") != std::string::npos);
  auto body = pull_request("labeled", true, {"ok-to-test"});
  body["label"] = {{"name", "ok-to-test"}};
  auto approved = decide_webhook(def, keys, github("pull_request", body.dump()));
  REQUIRE(approved);
  REQUIRE(approved->builds.size() == 1);
  CHECK(approved->builds[0].params.at("H_UNTRUSTED") == "1");
  CHECK(decide_webhook(def, keys, github("pull_request", pull_request("closed", false).dump()))->builds.empty());

  CHECK(decide_webhook(def, keys, github("issues", "{}")).error().code == "bad_request");
  CHECK(decide_webhook(def, keys, github("pull_request", "not json")).error().code == "bad_request");
  CHECK(decide_webhook(def, keys, github("pull_request", R"({"action":"opened"})")).error().code == "bad_request");
  auto unknown = github("ping", "{}");
  unknown.trigger = "nope";
  CHECK(decide_webhook(def, keys, unknown).error().code == "not_found");
  CHECK(decide_webhook(def, {}, github("ping", "{}")).error().message.find("webhook-key") != std::string::npos);
}

TEST_CASE("webhooks over HTTP: a signed pull request builds, bad ones get 4xx and build nothing, forks get no secrets", "[webhooks][e2e]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/hooks", hooks_yaml, {{"Content-Type", "application/yaml"}}).status == 200);
  REQUIRE(up.api("PUT", "/v1/projects/hooks/secrets/webhook-key", "gh-secret", {{"Content-Type", "text/plain"}}).status == 200);
  REQUIRE(up.api("PUT", "/v1/projects/hooks/secrets/generic-key", "g-secret", {{"Content-Type", "text/plain"}}).status == 200);
  REQUIRE(up.api("PUT", "/v1/projects/hooks/secrets/deploy-token", "s3cr3t-deploy", {{"Content-Type", "text/plain"}}).status == 200);
  auto post = [&](const std::string& target, const std::string& body, std::map<std::string, std::string> headers) {
    headers.emplace("Content-Type", "application/json");
    return http_request("127.0.0.1", up.port, "POST", target, body, headers);
  };
  auto signed_headers = [](const std::string& event, const std::string& body) {
    return std::map<std::string, std::string>{{"X-GitHub-Event", event},
                                              {"X-Hub-Signature-256", webhook_signature("gh-secret", body)}};
  };
  auto build_count = [&] { return json::parse(up.api("GET", "/v1/projects/hooks/builds").body).size(); };

  auto fork_pr = pull_request("labeled", true, {"ok-to-test"});
  fork_pr["label"] = {{"name", "ok-to-test"}};
  auto body = fork_pr.dump();
  auto ok = post("/v1/hooks/github/hooks", body, signed_headers("pull_request", body));
  INFO(ok.body);
  REQUIRE(ok.status == 202);
  CHECK(json::parse(ok.body)["builds"] == json::array({1}));
  auto build = json::parse(up.api("GET", "/v1/projects/hooks/builds/1").body);
  CHECK(build["params"]["GH_PRNUM"] == "7");

  // Refused, each with a JSON error, and no build made.
  auto forged = signed_headers("pull_request", body);
  forged["X-Hub-Signature-256"] = webhook_signature("guess", body);
  CHECK(post("/v1/hooks/github/hooks", body, forged).status == 401);
  CHECK(post("/v1/hooks/github/hooks", body, {{"X-GitHub-Event", "pull_request"}}).status == 401);
  CHECK(post("/v1/hooks/github/nope", body, signed_headers("pull_request", body)).status == 404);
  CHECK(post("/v1/hooks/github/hooks?trigger=nope", body, signed_headers("pull_request", body)).status == 404);
  CHECK(post("/v1/hooks/bitbucket/hooks", body, signed_headers("pull_request", body)).status == 404);
  CHECK(post("/v1/hooks/github/hooks", "{oops", signed_headers("pull_request", "{oops")).status == 400);
  CHECK(post("/v1/hooks/github/hooks", "{}", signed_headers("issues", "{}")).status == 400);
  auto old = std::to_string(std::time(nullptr) - 600);
  auto replay = post("/v1/hooks/generic/hooks", "{}", {{"X-Kiln-Timestamp", old},
                                                       {"X-Kiln-Signature", webhook_signature("g-secret", old + ".{}")}});
  CHECK(replay.status == 401);
  CHECK(replay.body.find("replay") != std::string::npos);
  std::string huge(2 * 1024 * 1024, ' ');
  auto too_big = post("/v1/hooks/github/hooks", huge, signed_headers("pull_request", huge));
  CHECK(too_big.status == 413);
  CHECK(too_big.body.find("\"error\"") != std::string::npos);
  auto text = http_request("127.0.0.1", up.port, "POST", "/v1/hooks/github/hooks", body,
                           {{"Content-Type", "application/x-www-form-urlencoded"}});
  CHECK(text.status == 415);
  CHECK(build_count() == 1);

  // The fork's run reaches a worker without the project's secrets.
  auto reg = up.api("POST", "/v1/workers", R"({"name":"w1","tags":["hooks"]})");
  REQUIRE(reg.status == 201);
  auto worker_token = json::parse(reg.body)["token"].get<std::string>();
  REQUIRE(up.api("POST", "/v1/workers/w1/enlist").status == 200);
  json runs;
  REQUIRE(wait_until([&] {
    auto c = up.api("POST", "/v1/workers/w1/checkin?wait=2", "{}", {}, worker_token);
    runs = c.status == 200 ? json::parse(c.body)["runs"] : json::array();
    return !runs.empty();
  }, 30s));
  CHECK(runs[0]["rundef"]["env"]["H_UNTRUSTED"] == "1");
  CHECK(runs[0]["rundef"]["secrets"].empty());
}
