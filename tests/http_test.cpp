// `kiln up` as a real process over real loopback HTTP: health, readiness,
// JSON errors for what is not built yet, limits, and a clean SIGTERM.
#include "kiln_up_fixture.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <tuple>
#include <regex>

using namespace kiln::test;



TEST_CASE("kiln up answers health and readiness over HTTP", "[http][up]") {
  kiln_up up;
  auto health = up.get("/healthz");
  CHECK(health.status == 200);
  CHECK(health.headers["content-type"] == "application/json");
  CHECK(health.body.find("\"ok\"") != std::string::npos);
  CHECK(up.get("/readyz").status == 200);
}

TEST_CASE("a wrong path, method or project answers a JSON error, not silence", "[http][up]") {
  kiln_up up;
  auto hook = http_request("127.0.0.1", up.port, "POST", "/v1/hooks/github/app", "{}");
  CHECK(hook.status == 404);
  CHECK(hook.body.find("\"error\":\"not_found\"") != std::string::npos);
  auto missing = up.get("/nowhere");
  CHECK(missing.status == 404);
  CHECK(missing.body.find("\"error\":\"not_found\"") != std::string::npos);
  auto wrong_method = http_request("127.0.0.1", up.port, "POST", "/healthz", "x");
  CHECK(wrong_method.status == 405);
}

TEST_CASE("oversized bodies get 413 and malformed requests 400", "[http][up]") {
  kiln_up up;
  auto big = http_request("127.0.0.1", up.port, "PUT", "/v1/projects/p",
                          std::string(2 * 1024 * 1024, 'x'));
  CHECK(big.status == 413);
  CHECK(big.body.find("\"error\":\"too_large\"") != std::string::npos);
  auto bad = http_request("127.0.0.1", up.port, "GET", "not a target at all\x01", "");
  CHECK(bad.status == 400);
  CHECK(up.get("/healthz").status == 200);  // the server carried on
}

TEST_CASE("SIGTERM stops kiln up cleanly with exit 0", "[http][up]") {
  kiln_up up;
  REQUIRE(up.get("/healthz").status == 200);
  up.proc->signal(SIGTERM);
  CHECK(up.proc->wait() == 0);
  CHECK(up.get("/healthz").status == 0);  // nobody listens any more
}

TEST_CASE("kiln up refuses an address it cannot bind, and bad options", "[http][up]") {
  temp_dir dir;
  auto [status, out] = run({KILN_BINARY, "up", "--data", (dir / "d").string(), "--listen",
                            "127.0.0.1:99999"});
  CHECK(status == 2);
  CHECK(out.find("HOST:PORT") != std::string::npos);
  auto [ustatus, uout] = run({KILN_BINARY, "up", "--bogus", "1"});
  CHECK(ustatus == 2);
  CHECK(uout.find("unknown option --bogus") != std::string::npos);
}

TEST_CASE("kiln up refuses bad store, notification and retention options", "[http][up]") {
  temp_dir dir;
  auto data = (dir / "d").string();
  auto refused = [&](std::vector<std::string> extra, const std::string& says) {
    std::vector<std::string> argv{KILN_BINARY, "up", "--data", data, "--workers", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto [status, out] = run(argv);
    INFO(out);
    CHECK(status == 2);
    CHECK(out.find(says) != std::string::npos);
  };
  refused({"--artifacts", "s3://"}, "names no bucket");
  refused({"--artifacts", "s3://b", "--s3-addressing", "sideways"}, "path or virtual");
  refused({"--artifacts", "s3://b", "--s3-downloads", "teleport"}, "redirect or proxy");
  refused({"--artifacts", "s3://b", "--s3-presign-expiry", "0"}, "1 to 604800");
  refused({"--artifacts", "s3://b", "--s3-part-size-mb", "4"}, "at least 5 MiB");
  refused({"--artifacts", "s3://b", "--s3-single-put-max-mb", "6000"}, "at most 5120");
  refused({"--artifact-retry-for", "soon"}, "--artifact-retry-for");
  refused({"--s3-endpoint", "http://x"}, "needs --artifacts s3://");
  refused({"--smtp", "mail.example.com"}, "smtp://HOST:PORT");
  refused({"--notify-retry", "soon"}, "--notify-retry wants seconds");
  refused({"--retention-interval", "0"}, "at least 1 second");
  refused({"--event-retention-hours", "0"}, "at least 1");
}

TEST_CASE("kiln up takes options from --config, the command line winning", "[http][up]") {
  temp_dir dir;
  auto config = dir / "kiln.yaml";
  std::ofstream{config} << "# kiln up --config\npublic-read: true\nlisten: 127.0.0.1:1\n"
                           "max-streams: 5\n";
  kiln_up up{{"--config", config.string()}};  // the fixture's --listen wins
  CHECK(up.get("/v1/projects").status == 200);  // public-read, from the file

  kiln_up closed{{"--config", config.string(), "--public-read=false"}};
  CHECK(closed.get("/v1/projects").status == 401);

  kiln_up sample{{"--config", SAMPLE_CONFIG}};  // deploy/kiln.sample.yml is usable as it is
  CHECK(sample.get("/readyz").status == 200);
}

TEST_CASE("a bad --config file is refused with its line and column", "[http][up]") {
  temp_dir dir;
  auto refused = [&](const std::string& yaml, const std::string& says) {
    auto file = dir / "bad.yaml";
    std::ofstream{file} << yaml;
    auto [status, out] = run({KILN_BINARY, "up", "--data", (dir / "d").string(), "--workers", "0",
                              "--config", file.string()});
    INFO(out);
    CHECK(status == 2);
    CHECK(out.find(file.string() + says) != std::string::npos);
  };
  refused("listen: 127.0.0.1:0\n\nbogus: 1\n", ":3:1: no option --bogus here");
  refused("listen: [127.0.0.1:0\n", ":2:1: ");
  refused("workers: 0\npublic-read: maybe\n", ":2:14: public-read is true or false, not 'maybe'");
  refused("artifacts:\n  dir: x\n", ":1:1: artifacts wants a value or a list");
  refused("- listen\n", ":1:1: wants a mapping");
  auto [status, out] = run({KILN_BINARY, "up", "--config", (dir / "none.yaml").string()});
  CHECK(status == 2);
  CHECK(out.find("cannot read") != std::string::npos);
}

TEST_CASE("kiln core and kiln gateway need NATS and say so", "[cli]") {
  temp_dir dir;
  auto [status, out] = run({KILN_BINARY, "core", "--data", (dir / "d").string()});
  CHECK(status == 2);
  CHECK(out.find("--nats nats://HOST:PORT") != std::string::npos);
  auto [gstatus, gout] = run({KILN_BINARY, "gateway", "--data", (dir / "g").string()});
  CHECK(gstatus == 2);
  CHECK(gout.find("--nats nats://HOST:PORT") != std::string::npos);
  auto [nstatus, nout] = run({KILN_BINARY, "gateway", "--data", (dir / "g").string(), "--nats",
                              "nats://127.0.0.1:9"});
  CHECK(nstatus == 1);
  CHECK(nout.find("no NATS server answers") != std::string::npos);
  for (auto [option, value, says] : {std::tuple{"--log-replicas", "9", "--log-replicas is 1 to 5"},
                                     std::tuple{"--console-retention-hours", "0", "at least 1"}}) {
    auto [bad, bad_out] = run({KILN_BINARY, "core", "--data", (dir / "c").string(), "--nats",
                               "nats://127.0.0.1:9", option, value});
    INFO(bad_out);
    CHECK(bad == 2);
    CHECK(bad_out.find(says) != std::string::npos);
  }
  auto [vstatus, vout] = run({KILN_BINARY, "--version"});
  CHECK(vstatus == 0);
  CHECK(vout.find("kiln 0.") != std::string::npos);
}
