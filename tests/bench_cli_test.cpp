// `kiln bench` from outside: bad command lines get exit 2 and say why, and
// a short `bench gateway` run prints every figure (no timing is asserted).
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace kiln::test;

TEST_CASE("kiln bench refuses bad command lines clearly", "[bench][cli]") {
  auto [zero, zero_out] = run({KILN_BINARY, "bench", "gateway", "--followers", "0"});
  CHECK(zero == 2);
  CHECK(zero_out.find("must be positive") != std::string::npos);
  auto [word, word_out] = run({KILN_BINARY, "bench", "gateway", "--seconds", "five"});
  CHECK(word == 2);
  CHECK(word_out.find("--seconds wants a whole number") != std::string::npos);
  auto [unknown, unknown_out] = run({KILN_BINARY, "bench", "nope"});
  CHECK(unknown == 2);
  CHECK(unknown_out.find("known: log, core, gateway, e2e, objectstore") != std::string::npos);
  auto [bad, bad_out] = run({KILN_BINARY, "bench", "cluster", "--bogus", "1"});
  CHECK(bad == 2);
  CHECK(bad_out.find("unknown option --bogus") != std::string::npos);
  auto [s3, s3_out] = run({KILN_BINARY, "bench", "objectstore"});
  CHECK(s3 == 2);
  CHECK(s3_out.find("--s3-endpoint") != std::string::npos);
}

TEST_CASE("a short kiln bench cluster prints its JetStream and cluster-vs-single figures",
          "[bench][cli][nats][cluster]") {
  temp_dir dir{"bench-cluster"};
  auto [code, out] = run({KILN_BINARY, "bench", "cluster", "--json", "--appends", "200",
                          "--rounds", "2", "--runs", "20", "--dir", (dir / "scratch").string()},
                         300s);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(out.find("cluster vs single node: ") != std::string::npos);
  auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
  for (auto key : {"js_append_ratio", "kiln_js_appends_per_s", "plain_js_appends_per_s",
                   "checked_js_append_ratio", "checked_js_appends_per_s",
                   "cluster_vs_single_ratio", "single_runs_per_s", "cluster_runs_per_s",
                   "single_finish_p99_ms", "cluster_finish_p99_ms"}) {
    INFO(key);
    CHECK(j.value(key, 0.0) > 0);
  }
  CHECK(j.value("failed", -1) == 0);
  // A missing cluster script is refused before anything starts.
  auto [missing, missing_out] = run({KILN_BINARY, "bench", "cluster", "--cluster-script", "/nonexistent.sh"});
  CHECK(missing == 2);
  CHECK(missing_out.find("no /nonexistent.sh") != std::string::npos);
}

TEST_CASE("a short kiln bench gateway prints every figure as JSON", "[bench][cli]") {
  temp_dir dir{"bench-gateway"};
  auto [code, out] = run({KILN_BINARY, "bench", "gateway", "--json", "--seconds", "1",
                          "--followers", "5", "--chunks", "20", "--dir",
                          (dir / "scratch").string()},
                         120s);
  INFO(out);
  REQUIRE(code == 0);
  auto last = out.substr(out.rfind('{'));
  auto j = nlohmann::json::parse(last);
  for (auto key : {"get_vs_nginx_ratio", "get_p99_ms", "follow_p99_ms", "nginx_get_per_s",
                   "trigger_per_s"})
    CHECK(j[key].get<double>() > 0);
  CHECK(j["follow_missing"] == 0);
  CHECK(j["followers"] == 5);
}

TEST_CASE("a short kiln bench e2e prints every figure as JSON with no failed run",
          "[bench][cli]") {
  temp_dir dir{"bench-e2e"};
  auto [code, out] = run({KILN_BINARY, "bench", "e2e", "--json", "--runs", "20", "--workers", "2",
                          "--dir", (dir / "scratch").string()},
                         300s);
  INFO(out);
  REQUIRE(code == 0);
  auto last = out.substr(out.rfind('{'));
  auto j = nlohmann::json::parse(last, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["failed"] == 0);
  for (auto key : {"overhead_ms", "start_p50_ms", "finish_p99_ms", "runs_per_s", "bare_p50_ms",
                   "run_vs_bare_ratio"})
    CHECK(j.contains(key));
  CHECK(j["runs_per_s"].get<double>() > 0);
}
