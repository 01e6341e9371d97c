// `kiln core` and `kiln gateway` as separate processes on a real
// nats-server: any gateway serves any request, and a gateway can go away
// and come back (a roll) while the other keeps serving.
#include "support/http_client.hpp"
#include "sample_projects.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <regex>

using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct gateway_process {
  std::unique_ptr<child_process> proc;
  std::uint16_t port = 0;
  gateway_process(const std::string& nats, const std::filesystem::path& data) {
    proc = std::make_unique<child_process>(process_options{
      {KILN_BINARY, "gateway", "--nats", nats, "--listen", "127.0.0.1:0", "--data", data.string()}});
    auto line = proc->wait_for_line("listening on http://", 30s);
    if (!line)
      FAIL("kiln gateway did not start: " << proc->transcript());
    std::smatch m;
    REQUIRE(std::regex_search(*line, m, std::regex{R"(127\.0\.0\.1:(\d+))"}));
    port = static_cast<std::uint16_t>(std::stoi(m[1]));
  }
  http_reply api(const std::string& method, const std::string& target, const std::string& token,
                 const std::string& body = {}, const std::string& type = "application/json") {
    std::map<std::string, std::string> headers{{"Authorization", "Bearer " + token}};
    if (!body.empty())
      headers["Content-Type"] = type;
    return http_request("127.0.0.1", port, method, target, body, headers);
  }
};

} // namespace

TEST_CASE("kiln core and two kiln gateways over NATS: any gateway serves, one can roll",
          "[nats][e2e]") {
  nats_server nats;
  temp_dir dir{"kiln-split"};
  child_process core{{{KILN_BINARY, "core", "--nats", nats.url(), "--data", (dir / "core").string()}}};
  if (!core.wait_for_line("kiln core: ready", 30s))
    FAIL("kiln core did not start: " << core.transcript());
  std::string admin;
  std::ifstream{dir / "core" / "admin.token"} >> admin;
  REQUIRE(!admin.empty());

  gateway_process a{nats.url(), dir / "gw-a"};
  auto b = std::make_unique<gateway_process>(nats.url(), dir / "gw-b");
  auto put = a.api("PUT", "/v1/projects/app", admin, one_run_project, "application/yaml");
  INFO(put.body);
  REQUIRE(put.status / 100 == 2);
  auto made = b->api("POST", "/v1/projects/app/builds", admin, R"({"trigger":"ci"})");
  INFO(made.body);
  REQUIRE(made.status == 201);
  auto seen = a.api("GET", "/v1/projects/app/builds/1", admin);
  REQUIRE(seen.status == 200);
  CHECK(json::parse(seen.body)["runs"][0]["name"] == "unit");

  // Roll gateway b: SIGTERM drains it, a; keeps serving, and a new b serves too.
  b->proc->signal(SIGTERM);
  auto code = b->proc->wait(30s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(a.api("POST", "/v1/projects/app/builds", admin, R"({"trigger":"ci"})").status == 201);
  b = std::make_unique<gateway_process>(nats.url(), dir / "gw-b");
  auto list = b->api("GET", "/v1/projects/app/builds", admin);
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body).size() == 2);
  // Without a core answering, a gateway tries again for its core timeout
  // (15 s: every core may be restarting), then says so rather than hanging.
  core.signal(SIGTERM);
  REQUIRE(core.wait(30s));
  auto down = http_request("127.0.0.1", a.port, "GET", "/v1/projects/app/builds", {},
                           {{"Authorization", "Bearer " + admin}}, 40s);
  CHECK(down.status == 503);
  CHECK(json::parse(down.body).value("error", "") == "unavailable");
}

TEST_CASE("kiln gateway and kiln up refuse a bad --http-threads before they start", "[cli]") {
  temp_dir dir{"kiln-http-threads"};
  // No NATS server at this address: the option is checked first.
  auto [word, word_out] = run({KILN_BINARY, "gateway", "--nats", "nats://127.0.0.1:1", "--data",
                               (dir / "gw").string(), "--http-threads", "two"});
  CHECK(word == 2);
  CHECK(word_out.find("--http-threads wants a whole number") != std::string::npos);
  auto [zero, zero_out] = run({KILN_BINARY, "up", "--data", (dir / "up").string(), "--http-threads", "0"});
  CHECK(zero == 2);
  CHECK(zero_out.find("--http-threads is at least 1") != std::string::npos);
}

TEST_CASE("kiln balance refuses a missing --nats or a bad --max-step-downs", "[cli]") {
  auto [none, none_out] = run({KILN_BINARY, "balance"});
  CHECK(none == 2);
  CHECK(none_out.find("--nats URL[,URL] is required") != std::string::npos);
  auto [word, word_out] = run({KILN_BINARY, "balance", "--nats", "nats://127.0.0.1:1",
                               "--max-step-downs", "many"});
  CHECK(word == 2);
  CHECK(word_out.find("--max-step-downs wants a whole number") != std::string::npos);
}
