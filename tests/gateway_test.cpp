// The HTTP API over real sockets against `kiln up`: every route's happy
// path and its errors, tokens, live console and events with resume, slow
// readers, and a drain on SIGTERM.
#include "kiln_up_fixture.hpp"
#include "sample_projects.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <thread>

using namespace kiln::test;
using json = nlohmann::json;

namespace {

const char* project_yaml = one_run_project;

json body(const http_reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    FAIL("not JSON (" << r.status << "): " << r.body);
  return j;
}

// A project with one build whose run is held by an enlisted worker; the
// worker's key.
struct running_build {
  kiln_up& up;
  std::string worker_token;

  explicit running_build(kiln_up& u) : up(u) {
    REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
              .status == 200);
    auto reg = up.api("POST", "/v1/workers", R"({"name":"w1","tags":["linux"]})", {}, "-");
    REQUIRE(reg.status == 201);
    worker_token = body(reg)["token"];
    REQUIRE(up.api("POST", "/v1/workers/w1/enlist").status == 200);
    auto t = up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})");
    REQUIRE(t.status == 201);
    // The run is handed out at a check-in once the scheduler assigned it.
    REQUIRE(wait_until([&] {
      auto c = worker("POST", "/v1/workers/w1/checkin?wait=1");
      return c.status == 200 && !body(c)["runs"].empty();
    }));
  }
  http_reply worker(const std::string& method, const std::string& target,
                    const std::string& b = {}, std::map<std::string, std::string> h = {}) {
    if (!h.count("Content-Type"))
      h.emplace("Content-Type", "application/json");
    return up.api(method, target, b, h, worker_token);
  }
  http_reply console(std::uint64_t offset, const std::string& bytes) {
    return worker("POST", "/v1/runs/app/1/unit/console?offset=" + std::to_string(offset), bytes,
                  {{"Content-Type", "application/octet-stream"}});
  }
};

} // namespace

TEST_CASE("projects: create, read, list, delete, with the errors a client meets", "[gateway]") {
  kiln_up up;
  CHECK(up.api("GET", "/v1/projects", {}, {}, "-").status == 401);
  CHECK(up.api("GET", "/v1/projects", {}, {}, "kt.admin.wrong").status == 401);
  CHECK(body(up.api("GET", "/v1/projects", {}, {}, "kt.admin.wrong"))["error"] == "unauthorized");

  auto wrong_type = up.api("PUT", "/v1/projects/app", project_yaml);  // JSON content type
  CHECK(wrong_type.status == 415);
  auto put = up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}});
  REQUIRE(put.status == 200);
  CHECK(body(put)["changed"] == true);

  auto bad = up.api("PUT", "/v1/projects/app", "timeout: 5\ntriggers:\n  - name: [x\n",
                    {{"Content-Type", "application/yaml"}});
  CHECK(bad.status == 422);
  CHECK(body(bad)["error"] == "invalid_definition");
  CHECK(body(bad)["message"].get<std::string>().find("line 4, column 1") != std::string::npos);

  auto big = up.api("PUT", "/v1/projects/app", std::string(10 * 1024 * 1024, '#'),
                    {{"Content-Type", "application/yaml"}});
  CHECK(big.status == 413);

  auto list = up.api("GET", "/v1/projects");
  REQUIRE(list.status == 200);
  CHECK(body(list)[0]["name"] == "app");
  auto one = up.api("GET", "/v1/projects/app");
  CHECK(body(one)["yaml"] == project_yaml);
  CHECK(up.api("GET", "/v1/projects/nope").status == 404);
  CHECK(up.api("GET", "/v1/projects/app/../app").status == 400);
  CHECK(up.api("PATCH", "/v1/projects/app").status == 405);

  CHECK(up.api("PUT", "/v1/projects/app/secrets/token", "s3cret", {{"Content-Type", "text/plain"}})
          .status == 200);
  auto with_secret = up.api("GET", "/v1/projects/app");
  CHECK(body(with_secret)["secrets"] == json::array({"token"}));
  CHECK(with_secret.body.find("s3cret") == std::string::npos);
  CHECK(up.api("DELETE", "/v1/projects/app/secrets/token").status == 200);

  CHECK(up.api("DELETE", "/v1/projects/app").status == 200);
  CHECK(up.api("GET", "/v1/projects/app").status == 404);
}

TEST_CASE("builds: trigger, list, read, cancel, rerun", "[gateway]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  auto t = up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci","params":{"A":"1"}})");
  REQUIRE(t.status == 201);
  CHECK(body(t)["build"] == 1);
  CHECK(body(t)["runs"] == json::array({"unit"}));
  CHECK(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"nope"})").status == 400);
  CHECK(up.api("POST", "/v1/projects/app/builds", "not json").status == 400);
  CHECK(up.api("POST", "/v1/projects/app/builds", "{}", {{"Content-Type", "text/plain"}}).status == 415);
  CHECK(up.api("POST", "/v1/projects/nope/builds", R"({"trigger":"ci"})").status == 404);

  // The same Idempotency-Key twice makes one build.
  auto k1 = up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {{"Idempotency-Key", "k-1"}});
  auto k2 = up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {{"Idempotency-Key", "k-1"}});
  REQUIRE(k1.status == 201);
  CHECK(body(k1)["build"] == body(k2)["build"]);

  auto list = up.api("GET", "/v1/projects/app/builds?limit=1");
  REQUIRE(list.status == 200);
  REQUIRE(body(list).size() == 1);
  CHECK(body(list)[0]["build"] == 2);  // newest first
  CHECK(up.api("GET", "/v1/projects/app/builds?limit=x").status == 400);

  auto b = up.api("GET", "/v1/projects/app/builds/1");
  REQUIRE(b.status == 200);
  CHECK(body(b)["params"]["A"] == "1");
  CHECK(body(b)["runs"][0]["status"] == "QUEUED");
  CHECK(up.api("GET", "/v1/projects/app/builds/0").status == 400);
  CHECK(up.api("GET", "/v1/projects/app/builds/99").status == 404);

  auto run = up.api("GET", "/v1/projects/app/builds/1/runs/unit");
  REQUIRE(run.status == 200);
  CHECK(body(run)["status"] == "QUEUED");
  auto rundef = up.api("GET", "/v1/projects/app/builds/1/runs/unit/rundef");
  REQUIRE(rundef.status == 200);
  CHECK(body(rundef)["env"]["A"] == "1");

  CHECK(up.api("POST", "/v1/projects/app/builds/1/cancel").status == 202);
  REQUIRE(wait_until([&] {
    return body(up.api("GET", "/v1/projects/app/builds/1"))["status"] == "CANCELLED";
  }));
  auto rerun = up.api("POST", "/v1/projects/app/builds/1/rerun");
  REQUIRE(rerun.status == 201);
  CHECK(body(rerun)["build"] == 3);
  // The build's runs are made just after the answer (by the process manager).
  REQUIRE(wait_until([&] { return up.api("GET", "/v1/projects/app/builds/3/runs/unit").status == 200; }));
  CHECK(up.api("POST", "/v1/projects/app/builds/3/runs/unit/cancel").status == 202);
}

TEST_CASE("a worker's key works only once it is enlisted, and only for itself", "[gateway]") {
  kiln_up up;
  auto reg = up.api("POST", "/v1/workers", R"({"name":"w1","tags":["linux"]})", {}, "-");
  REQUIRE(reg.status == 201);
  std::string key = body(reg)["token"];
  auto early = up.api("POST", "/v1/workers/w1/checkin", {}, {}, key);
  CHECK(early.status == 403);
  CHECK(body(early)["message"].get<std::string>().find("enlist") != std::string::npos);
  CHECK(up.api("POST", "/v1/workers/w1/enlist", {}, {}, key).status == 403);  // not an admin
  REQUIRE(up.api("POST", "/v1/workers/w1/enlist").status == 200);
  CHECK(up.api("POST", "/v1/workers/w1/checkin", {}, {}, key).status == 200);
  REQUIRE(up.api("POST", "/v1/workers", R"({"name":"w2"})", {}, "-").status == 201);
  CHECK(up.api("POST", "/v1/workers/w2/checkin", {}, {}, key).status == 403);  // not its own
  CHECK(up.api("GET", "/v1/projects", {}, {}, key).status == 403);  // a worker reads no API
  auto workers = up.api("GET", "/v1/workers");
  REQUIRE(workers.status == 200);
  CHECK(body(workers).size() == 2);
  CHECK(up.api("POST", "/v1/workers/w1/delist").status == 200);
  CHECK(up.api("DELETE", "/v1/workers/w2").status == 200);
}

TEST_CASE("a run from check-in to PASSED: console, artifacts, tests, status", "[gateway]") {
  kiln_up up;
  running_build rb{up};
  auto started = rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})");
  REQUIRE(started.status == 200);
  // Status reports are idempotent.
  CHECK(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);

  REQUIRE(rb.console(0, "hello\n").status == 200);
  auto resent = rb.console(0, "hello\nworld\n");  // overlaps: only "world\n" is new
  REQUIRE(resent.status == 200);
  CHECK(body(resent)["size"] == 12);
  auto gap = rb.console(50, "x");
  CHECK(gap.status == 409);
  CHECK(body(gap)["error"] == "gap");
  CHECK(rb.console(12, std::string(2 * 1024 * 1024, 'x')).status == 413);

  auto art = rb.worker("PUT", "/v1/runs/app/1/unit/artifacts/out/report.txt", "0123456789",
                       {{"Content-Type", "application/octet-stream"}});
  REQUIRE(art.status == 201);
  CHECK(body(art)["size"] == 10);
  CHECK(body(art)["sha256"] == "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882");
  auto escape = rb.worker("PUT", "/v1/runs/app/1/unit/artifacts/out/../../../etc/x", "bad",
                          {{"Content-Type", "application/octet-stream"}});
  CHECK(escape.status == 400);
  auto escape2 = rb.worker("PUT", "/v1/runs/app/1/unit/artifacts/out%2F..%2F..%2Fx", "bad",
                           {{"Content-Type", "application/octet-stream"}});
  CHECK(escape2.status == 400);

  auto tests = rb.worker("POST", "/v1/runs/app/1/unit/tests",
                         R"({"suite":"unit","results":[{"name":"t1","status":"PASSED"},
                             {"name":"t2","status":"FAILED","message":"boom"}]})");
  CHECK(tests.status == 200);

  auto done = rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"PASSED","exit_code":0})");
  REQUIRE(done.status == 200);
  CHECK(rb.console(12, "late").status == 409);  // the console is closed

  auto text = up.api("GET", "/v1/projects/app/builds/1/runs/unit/console");
  CHECK(text.status == 200);
  CHECK(text.body == "hello\nworld\n");
  CHECK(up.api("GET", "/v1/projects/app/builds/1/runs/unit/console?offset=6").body == "world\n");

  auto arts = up.api("GET", "/v1/projects/app/builds/1/runs/unit/artifacts");
  REQUIRE(arts.status == 200);
  CHECK(body(arts)[0]["path"] == "out/report.txt");
  auto file = up.api("GET", "/v1/projects/app/builds/1/runs/unit/artifacts/out/report.txt");
  CHECK(file.status == 200);
  CHECK(file.body == "0123456789");
  auto range = up.api("GET", "/v1/projects/app/builds/1/runs/unit/artifacts/out/report.txt", {},
                      {{"Range", "bytes=2-4"}});
  CHECK(range.status == 206);
  CHECK(range.body == "234");
  CHECK(range.headers["content-range"] == "bytes 2-4/10");
  CHECK(up.api("GET", "/v1/projects/app/builds/1/runs/unit/artifacts/nope").status == 404);

  auto results = up.api("GET", "/v1/projects/app/builds/1/runs/unit/tests");
  CHECK(body(results).size() == 2);
  // The build completes once its process manager has seen the run end.
  CHECK(wait_until([&] { return body(up.api("GET", "/v1/projects/app/builds/1"))["status"] == "PASSED"; }));
}

TEST_CASE("a final status carries the console's last bytes, written before the run ends", "[gateway]") {
  kiln_up up;
  running_build rb{up};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  REQUIRE(rb.console(0, "hello\n").status == 200);
  auto status = "/v1/runs/app/1/unit/status";
  // Refused, and nothing of it kept: bad base64, a bad shape, a gap.
  auto bad = rb.worker("POST", status, R"({"status":"PASSED","console":{"offset":6,"data":"d29y*"}})");
  CHECK(bad.status == 400);
  CHECK(body(bad)["message"].get<std::string>().find("base64") != std::string::npos);
  CHECK(rb.worker("POST", status, R"({"status":"PASSED","console":"world"})").status == 400);
  auto gap = rb.worker("POST", status, R"({"status":"PASSED","console":{"offset":9,"data":"d29ybGQK"}})");
  CHECK(gap.status == 409);
  CHECK(body(gap)["error"] == "gap");
  CHECK(body(up.api("GET", "/v1/projects/app/builds/1/runs/unit"))["status"] == "RUNNING");

  // "world\n" from offset 6; a retry of the same request changes nothing.
  auto done = R"({"status":"PASSED","exit_code":0,"console":{"offset":6,"data":"d29ybGQK"}})";
  REQUIRE(rb.worker("POST", status, done).status == 200);
  auto again = rb.worker("POST", status, done);
  CHECK(again.status == 200);
  CHECK(body(again)["duplicate"] == true);
  CHECK(up.api("GET", "/v1/projects/app/builds/1/runs/unit/console").body == "hello\nworld\n");
  CHECK(body(up.api("GET", "/v1/projects/app/builds/1/runs/unit"))["status"] == "PASSED");
}

TEST_CASE("console follow streams as written and ends with the run, and SSE resumes exactly", "[gateway]") {
  kiln_up up;
  running_build rb{up};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin}};
  http_stream plain{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", auth};
  auto sse_headers = auth;
  sse_headers["Accept"] = "text/event-stream";
  http_stream sse{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", sse_headers};

  std::string expected;
  for (int i = 0; i < 50; ++i) {
    auto line = "line " + std::to_string(i) + " é\n";
    REQUIRE(rb.console(expected.size(), line).status == 200);
    expected += line;
  }
  REQUIRE(sse.read_until("line 49"));
  sse.close();  // a dropped connection mid-run

  // Resume from the last id seen: the rest, nothing twice.
  std::size_t last_id = 0;
  std::regex id_re{R"(id: (\d+))"};
  for (std::sregex_iterator it{sse.raw().begin(), sse.raw().end(), id_re}, end; it != end; ++it)
    last_id = std::stoul((*it)[1]);
  CHECK(last_id == expected.size());
  for (int i = 50; i < 60; ++i) {
    auto line = "line " + std::to_string(i) + "\n";
    REQUIRE(rb.console(expected.size(), line).status == 200);
    expected += line;
  }
  auto resume_headers = sse_headers;
  resume_headers["Last-Event-ID"] = std::to_string(last_id);
  http_stream resumed{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", resume_headers};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"PASSED"})").status == 200);

  REQUIRE(plain.read_to_end());
  CHECK(plain.body() == expected);
  REQUIRE(resumed.read_to_end());
  std::string text;
  std::regex data_re{R"(event: console\ndata: (.*)\n)"};
  auto raw = dechunk(resumed.raw().substr(resumed.raw().find("\r\n\r\n") + 4));
  for (std::sregex_iterator it{raw.begin(), raw.end(), data_re}, end; it != end; ++it)
    text += json::parse((*it)[1].str())["text"].get<std::string>();
  CHECK(text == expected.substr(last_id));
  CHECK(raw.find("event: end") != std::string::npos);

  CHECK(up.api("GET", "/v1/projects/app/builds/1/runs/nope/console?follow=1").status == 404);
}

TEST_CASE("the event feed: history then live, no gap or repeat, resumable, filtered", "[gateway]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin}};
  http_stream feed{up.port, "/v1/events?after=0&filter=app.>", auth};
  REQUIRE(feed.read_until("ProjectCreated"));
  for (int i = 0; i < 5; ++i)
    REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  REQUIRE(wait_until([&] {
    feed.read_until("\"number\":5", std::chrono::milliseconds{200});
    return feed.raw().find("\"number\":5") != std::string::npos;
  }));
  std::vector<std::uint64_t> ids;
  std::regex id_re{R"(id: (\d+))"};
  auto raw = feed.raw();
  for (std::sregex_iterator it{raw.begin(), raw.end(), id_re}, end; it != end; ++it)
    ids.push_back(std::stoull((*it)[1]));
  REQUIRE(ids.size() >= 6);
  for (std::size_t i = 1; i < ids.size(); ++i)
    CHECK(ids[i] > ids[i - 1]);  // in order, none twice
  CHECK(raw.find("WorkerRegistered") == std::string::npos);
  feed.close();

  auto resume = auth;
  resume["Last-Event-ID"] = std::to_string(ids[2]);
  http_stream again{up.port, "/v1/events?filter=app.>", resume};
  REQUIRE(again.read_until("id: " + std::to_string(ids[3]) + "\n"));
  CHECK(again.raw().find("id: " + std::to_string(ids[2]) + "\n") == std::string::npos);

  CHECK(up.api("GET", "/v1/events?filter=a..b").status == 400);
  CHECK(up.api("GET", "/v1/events?after=x").status == 400);
}

TEST_CASE("a reader that never reads does not stop the others", "[gateway]") {
  kiln_up up;
  running_build rb{up};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin},
                                                 {"Accept", "text/event-stream"}};
  http_stream stuck{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", auth};
  http_stream live{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", auth};
  const std::string chunk(1024 * 1024 - 16, 'x');
  std::uint64_t offset = 0;
  for (int i = 0; i < 24; ++i) {
    REQUIRE(rb.console(offset, chunk + "\n").status == 200);
    offset += chunk.size() + 1;
    REQUIRE(live.read_until("id: " + std::to_string(offset) + "\n"));
  }
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"PASSED"})").status == 200);
  REQUIRE(live.read_to_end());
  CHECK(live.raw().find("event: end") != std::string::npos);
  // The stuck reader was cut off with a message naming where to resume.
  REQUIRE(stuck.read_to_end());
  CHECK(stuck.raw().find("event: reconnect") != std::string::npos);
  CHECK(stuck.raw().find("too far behind") != std::string::npos);
}

TEST_CASE("past the open-stream limit a new stream gets 429, the open ones carry on", "[gateway]") {
  kiln_up up{{"--max-streams", "2"}};
  running_build rb{up};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  REQUIRE(rb.console(0, "first\n").status == 200);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin},
                                                 {"Accept", "text/event-stream"}};
  const std::string follow = "/v1/projects/app/builds/1/runs/unit/console?follow=1";
  http_stream a{up.port, follow, auth};
  http_stream b{up.port, follow, auth};
  REQUIRE(a.read_until("first"));
  REQUIRE(b.read_until("first"));
  http_stream c{up.port, follow, auth};
  REQUIRE(c.read_until("too_many"));  // the answer; the connection stays open (keep-alive)
  CHECK(c.raw().rfind("HTTP/1.1 429", 0) == 0);
  CHECK(c.raw().find(R"("error":"too_many")") != std::string::npos);
  CHECK(up.api("GET", "/v1/projects/app/builds/1").status == 200);  // plain requests are not streams
  REQUIRE(rb.console(6, "second\n").status == 200);
  CHECK(a.read_until("second"));
  CHECK(b.read_until("second"));
}

TEST_CASE("tokens: scopes, a project's token, revocation, public read", "[gateway]") {
  kiln_up up{{"--public-read"}};
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  REQUIRE(up.api("PUT", "/v1/projects/other", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  CHECK(up.api("GET", "/v1/projects", {}, {}, "-").status == 200);  // public read
  CHECK(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {}, "-").status == 401);
  CHECK(up.api("GET", "/v1/tokens", {}, {}, "-").status == 401);

  auto reader = up.api("POST", "/v1/tokens", R"({"scope":"read","label":"dashboards"})");
  REQUIRE(reader.status == 201);
  std::string read_token = body(reader)["token"];
  CHECK(up.api("GET", "/v1/projects", {}, {}, read_token).status == 200);
  CHECK(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {}, read_token).status == 403);

  auto ci = up.api("POST", "/v1/tokens", R"({"scope":"trigger","project":"app"})");
  REQUIRE(ci.status == 201);
  std::string ci_token = body(ci)["token"];
  CHECK(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {}, ci_token).status == 201);
  CHECK(up.api("POST", "/v1/projects/other/builds", R"({"trigger":"ci"})", {}, ci_token).status == 403);
  CHECK(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}}, ci_token)
          .status == 403);
  CHECK(up.api("POST", "/v1/tokens", R"({"scope":"root"})").status == 400);

  auto tokens = up.api("GET", "/v1/tokens");
  REQUIRE(tokens.status == 200);
  CHECK(tokens.body.find(read_token) == std::string::npos);  // never shown again
  CHECK(up.api("DELETE", "/v1/tokens/" + body(reader)["id"].get<std::string>()).status == 200);
  CHECK(wait_until([&] { return up.api("GET", "/v1/projects", {}, {}, read_token).status == 401; }));
}

TEST_CASE("kiln token create, list and revoke over HTTP", "[gateway][cli]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  auto server = "http://127.0.0.1:" + std::to_string(up.port);
  auto admin_file = (up.dir / "data" / "admin.token").string();
  auto token_cmd = [&](std::vector<std::string> rest) {
    std::vector<std::string> argv{KILN_BINARY, "token"};
    argv.insert(argv.end(), rest.begin(), rest.end());
    for (auto extra : {"--server", server.c_str(), "--token-file", admin_file.c_str()})
      argv.emplace_back(extra);
    return run(argv);
  };
  // The JSON line of a command's output (stderr is merged into it).
  auto json_line = [](const std::string& out) {
    auto at = out.find('{');
    REQUIRE(at != std::string::npos);
    return json::parse(out.substr(at, out.find('\n', at) - at));
  };

  auto [code, out] = token_cmd({"create", "--scope", "trigger", "--project", "app", "--json"});
  REQUIRE(code == 0);
  auto made = json_line(out);
  std::string token = made["token"];
  CHECK(made["scope"] == "trigger");
  CHECK(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})", {}, token).status == 201);
  CHECK(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}}, token)
          .status == 403);

  auto [lcode, listed] = token_cmd({"list"});
  CHECK(lcode == 0);
  CHECK(listed.find(made["id"].get<std::string>() + "\ttrigger\tapp") != std::string::npos);
  CHECK(listed.find(token) == std::string::npos);

  auto [rcode, rout] = token_cmd({"revoke", made["id"]});
  CHECK(rcode == 0);
  CHECK(wait_until([&] {
    return up.api("GET", "/v1/projects", {}, {}, token).status == 401;
  }));

  // The errors a user meets: a bad scope, a token that is not an admin's, no token.
  auto [bad, bad_out] = token_cmd({"create", "--scope", "root"});
  CHECK(bad == 1);
  CHECK(bad_out.find("scope") != std::string::npos);
  auto [reader_code, reader_out] = token_cmd({"create", "--scope", "read", "--json"});
  REQUIRE(reader_code == 0);
  std::string reader = json_line(reader_out)["token"];
  auto [weak, weak_out] = run({KILN_BINARY, "token", "list", "--server", server}, 60s);
  CHECK(weak == 2);
  CHECK(weak_out.find("KILN_TOKEN") != std::string::npos);
  setenv("KILN_TOKEN", reader.c_str(), 1);
  auto [denied, denied_out] = run({KILN_BINARY, "token", "list", "--server", server}, 60s);
  unsetenv("KILN_TOKEN");
  CHECK(denied == 1);
  CHECK(denied_out.find("forbidden") != std::string::npos);
  auto [down, down_out] = run({KILN_BINARY, "token", "list", "--server", "http://127.0.0.1:1",
                               "--token-file", admin_file}, 60s);
  CHECK(down == 1);
  CHECK(down_out.find("127.0.0.1:1") != std::string::npos);
}

TEST_CASE("metrics in Prometheus text", "[gateway]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  // The runs are queued just after the trigger's reply.
  REQUIRE(wait_until([&] { return up.get("/metrics").body.find("kiln_queue_length 1") != std::string::npos; }));
  auto m = up.get("/metrics");
  REQUIRE(m.status == 200);
  for (auto family : {"kiln_http_requests_total{route=\"/v1/projects/{project}\",status=\"200\"} 1",
                      "kiln_http_request_duration_seconds_bucket", "kiln_open_streams 0",
                      "kiln_queue_length 1", "kiln_runs{status=\"QUEUED\"} 1", "kiln_event_log_seq"})
    CHECK(m.body.find(family) != std::string::npos);
}

TEST_CASE("SIGTERM ends a follow stream and a long poll cleanly, then exits 0", "[gateway]") {
  kiln_up up;
  running_build rb{up};
  REQUIRE(rb.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin},
                                                 {"Accept", "text/event-stream"}};
  http_stream follow{up.port, "/v1/projects/app/builds/1/runs/unit/console?follow=1", auth};
  REQUIRE(rb.console(0, "started\n").status == 200);
  REQUIRE(follow.read_until("started"));
  http_reply poll;
  std::thread poller([&] { poll = rb.worker("POST", "/v1/workers/w1/checkin?wait=30"); });
  // The long poll is open once the worker's check-in is counted as a stream.
  REQUIRE(wait_until([&] {
    return up.get("/metrics").body.find("kiln_open_streams 2") != std::string::npos;
  }));
  up.proc->signal(SIGTERM);
  REQUIRE(follow.read_to_end());
  CHECK(follow.raw().find("event: reconnect") != std::string::npos);
  poller.join();
  CHECK(poll.status == 200);
  CHECK(body(poll)["draining"] == true);
  CHECK(up.proc->wait() == 0);
}

TEST_CASE("the web UI is served at / with ETags, and an unknown file is a JSON 404", "[gateway][ui]") {
  kiln_up up;
  auto index = up.get("/");
  REQUIRE(index.status == 200);
  CHECK(index.headers["content-type"] == "text/html; charset=utf-8");
  CHECK(index.body.find("ui/app.js") != std::string::npos);
  CHECK(index.headers["content-security-policy"].find("default-src 'self'") != std::string::npos);
  auto etag = index.headers["etag"];
  REQUIRE(etag.size() > 2);
  auto again = http_request("127.0.0.1", up.port, "GET", "/", {}, {{"If-None-Match", etag}});
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  auto app = up.get("/ui/app.js");
  REQUIRE(app.status == 200);
  CHECK(app.headers["content-type"] == "text/javascript; charset=utf-8");
  CHECK(app.headers["etag"] != etag);
  auto missing = up.get("/ui/nope.js");
  CHECK(missing.status == 404);
  CHECK(body(missing)["error"] == "not_found");
  CHECK(up.get("/ui/../admin.token").status == 400);
}

TEST_CASE("the badge shows the last build, with the API's errors and access", "[gateway][ui]") {
  kiln_up up;
  running_build r{up};
  auto svg = [&](const std::string& token = "") {
    return up.api("GET", "/v1/projects/app/badge.svg", {}, {}, token);
  };
  auto running = svg();
  REQUIRE(running.status == 200);
  CHECK(running.headers["content-type"] == "image/svg+xml");
  CHECK(running.body.find(R"(aria-label="build: running")") != std::string::npos);
  REQUIRE(r.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"RUNNING"})").status == 200);
  REQUIRE(r.worker("POST", "/v1/runs/app/1/unit/status", R"({"status":"FAILED","exit_code":2})").status == 200);
  REQUIRE(wait_until([&] { return svg().body.find("build: failing") != std::string::npos; }));
  CHECK(svg().body.find("#c62828") != std::string::npos);
  CHECK(up.api("GET", "/v1/projects/nope/badge.svg").status == 404);
  CHECK(svg("-").status == 401);  // not public unless the node is
  auto projects = body(up.api("GET", "/v1/projects"));
  CHECK(projects[0]["last_build_status"] == "FAILED");
}

TEST_CASE("whoami names the scope of a token, and public read answers anonymous", "[gateway][ui]") {
  kiln_up up{{"--public-read"}};
  auto admin = up.api("GET", "/v1/whoami");
  REQUIRE(admin.status == 200);
  CHECK(body(admin)["scope"] == "admin");
  CHECK(body(admin)["anonymous"] == false);
  auto anyone = up.api("GET", "/v1/whoami", {}, {}, "-");
  REQUIRE(anyone.status == 200);
  CHECK(body(anyone)["anonymous"] == true);
  CHECK(up.api("GET", "/v1/whoami", {}, {}, "kt.nobody.nothing").status == 401);
  // A badge of a public node needs no token.
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  auto badge = up.api("GET", "/v1/projects/app/badge.svg", {}, {}, "-");
  CHECK(badge.status == 200);
  CHECK(badge.body.find("no builds") != std::string::npos);
}

TEST_CASE("the event feed with tail=N starts N commits before the head", "[gateway][ui]") {
  kiln_up up;
  REQUIRE(up.api("PUT", "/v1/projects/app", project_yaml, {{"Content-Type", "application/yaml"}})
            .status == 200);
  for (int i = 0; i < 4; ++i)
    REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  auto auth = std::map<std::string, std::string>{{"Authorization", "Bearer " + up.admin}};
  // The head, as the full feed ends it.
  http_stream all{up.port, "/v1/events?after=0", auth};
  REQUIRE(all.read_until("\"stream\":\"run/app/4/unit\""));  // the last commit of the four
  std::regex id_re{R"(id: (\d+))"};
  std::uint64_t head = 0;
  auto raw = all.raw();
  for (std::sregex_iterator it{raw.begin(), raw.end(), id_re}, end; it != end; ++it)
    head = std::max<std::uint64_t>(head, std::stoull((*it)[1]));
  all.close();
  REQUIRE(head > 3);
  http_stream tail{up.port, "/v1/events?tail=2", auth};
  REQUIRE(tail.read_until("id: " + std::to_string(head - 1) + "\n"));
  CHECK(tail.raw().find("id: " + std::to_string(head - 2) + "\n") == std::string::npos);
  CHECK(up.api("GET", "/v1/events?tail=x").status == 400);
}
