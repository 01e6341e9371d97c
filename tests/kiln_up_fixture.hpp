#pragma once
// `kiln up` as a real child process, and HTTP helpers against it.
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <functional>
#include <regex>

namespace kiln::test {

struct kiln_up {
  temp_dir dir{"kiln-up"};
  std::unique_ptr<child_process> proc;
  std::uint16_t port = 0;
  std::string admin;  // the admin token

  std::vector<std::string> extra_args;

  explicit kiln_up(std::vector<std::string> extra = {}) : extra_args(std::move(extra)) {
    start("127.0.0.1:0");
  }

  // Stops the node (SIGTERM, as an operator would), keeps it down until
  // `back_when` holds, and starts it again on the same port and data.
  void restart(const std::function<bool()>& back_when) {
    proc->signal(SIGTERM);
    REQUIRE(proc->wait(30s));
    REQUIRE(wait_until(back_when, 60s));
    start("127.0.0.1:" + std::to_string(port));
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  void start(const std::string& listen) {
    std::vector<std::string> argv{KILN_BINARY, "up", "--data", (dir / "data").string(),
                                  "--listen", listen, "--workers", "0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc = std::make_unique<child_process>(process_options{argv});
    auto line = proc->wait_for_line("listening on http://");
    if (!line)
      FAIL("kiln up did not start: " << proc->transcript());
    std::smatch m;
    std::regex re{R"(http://127\.0\.0\.1:(\d+))"};
    REQUIRE(std::regex_search(*line, m, re));
    port = static_cast<std::uint16_t>(std::stoi(m[1]));
    std::ifstream in{dir / "data" / "admin.token"};
    std::getline(in, admin);
  }

  http_reply get(const std::string& target) { return http_request("127.0.0.1", port, "GET", target); }

  // A request with a bearer token (the admin's unless another is given).
  http_reply api(const std::string& method, const std::string& target, const std::string& body = {},
                 std::map<std::string, std::string> headers = {}, std::string token = "") {
    if (token.empty())
      token = admin;
    if (token != "-")
      headers.emplace("Authorization", "Bearer " + token);
    if (!body.empty() && !headers.count("Content-Type"))
      headers.emplace("Content-Type", "application/json");
    return http_request("127.0.0.1", port, method, target, body, headers);
  }
};

} // namespace kiln::test
