// `kiln bench objectstore --s3-endpoint URL [--size-mb 64] [--rounds 3] [--json]`:
// a 64 MiB artifact through a real `kiln up --artifacts s3://…` against the
// same bytes put to and got from the S3 server straight by `curl`, in one
// run (credentials from the AWS environment or credentials file):
//   upload      worker -> gateway (spool, sha256) -> S3      vs  curl -T to a presigned PUT
//   download    gateway proxying S3's bytes (--s3-downloads proxy)  vs  curl of a presigned GET
//   redirect    the gateway's 302 plus curl of its presigned URL    vs  the same curl alone
// Each figure is the median of the rounds; ratios are throughput, kiln / curl.
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/bench_support.hpp"
#include "cli/benches.hpp"
#include "storage/s3_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include <unistd.h>

namespace kiln::cli {

namespace {

using nlohmann::json;

// `curl` as a child process: its exit status and %{http_code} %{time_total}.
struct curl_result {
  int http = 0;
  double seconds = 0;
};

curl_result run_curl(std::vector<std::string> args, const std::filesystem::path& log) {
  std::vector<std::string> argv{"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w",
                                "%{http_code} %{time_total}\n"};
  argv.insert(argv.end(), args.begin(), args.end());
  subprocess p{argv, log};
  auto out = p.read_to_end();
  check(p.wait() == 0, "curl failed; see " + log.string());
  curl_result r;
  check(std::sscanf(out.c_str(), "%d %lf", &r.http, &r.seconds) == 2, "curl said: " + out);
  return r;
}

double median(std::vector<double> v) { return percentile(v, 50); }

} // namespace

int bench_objectstore(const args& a) {
  a.allow_only({"s3-endpoint", "s3-region", "size-mb", "rounds", "json", "dir", "s3-part-size-mb",
                "s3-parallel-parts"});
  auto endpoint = a.get("s3-endpoint");
  if (!endpoint)
    throw usage_error("kiln bench objectstore needs --s3-endpoint URL (an S3-compatible server; "
                      "deploy/radosgw/radosgw.sh start DIR runs one on loopback) and "
                      "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
  auto size_mb = a.get_u64("size-mb", 64);
  auto rounds = std::max<std::uint64_t>(1, a.get_u64("rounds", 3));
  auto credentials = storage::load_s3_credentials();
  check(bool(credentials), credentials ? "" : credentials.error().message);

  bench_dir dir{a, "objectstore"};
  auto root = std::filesystem::absolute(dir.path());
  auto bucket = "kiln-bench-" + std::to_string(getpid());
  storage::s3_config s3c;
  s3c.endpoint = *endpoint;
  s3c.region = a.get_or("s3-region", "us-east-1");
  s3c.bucket = bucket;
  s3c.credentials = *credentials;
  storage::s3_client s3{s3c};
  auto made = s3.create_bucket();
  check(bool(made), made ? "" : made.error().message);

  auto file = root / "artifact.bin";
  {
    std::mt19937_64 gen{42};
    std::ofstream out{file, std::ios::binary};
    std::vector<std::uint64_t> block(1 << 17);
    for (std::uint64_t written = 0; written < size_mb << 20; written += block.size() * 8) {
      for (auto& x : block)
        x = gen();
      out.write(reinterpret_cast<const char*>(block.data()),
                static_cast<std::streamsize>(block.size() * 8));
    }
  }
  auto bytes = static_cast<double>(size_mb << 20);
  std::printf("bench objectstore: %llu MiB x %llu rounds, endpoint %s, bucket %s\n",
              static_cast<unsigned long long>(size_mb), static_cast<unsigned long long>(rounds),
              endpoint->c_str(), bucket.c_str());
  std::fflush(stdout);
  auto curl_log = root / "curl.log";
  auto now = [] { return static_cast<long long>(std::time(nullptr)); };

  // Untimed: a freshly started radosgw is slow for its first objects.
  run_curl({"-T", file.string(), s3.presigned_put("warm-up.bin", 600, now())}, curl_log);
  run_curl({s3.presigned_get("warm-up.bin", 600, now())}, curl_log);

  // The baseline: curl straight to S3.
  std::vector<double> raw_up, raw_down;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    auto key = "raw/" + std::to_string(i) + ".bin";
    auto up = run_curl({"-T", file.string(), s3.presigned_put(key, 600, now())}, curl_log);
    check(up.http == 200, "curl PUT to S3 answered " + std::to_string(up.http));
    raw_up.push_back(up.seconds);
    auto down = run_curl({s3.presigned_get(key, 600, now())}, curl_log);
    check(down.http == 200, "curl GET from S3 answered " + std::to_string(down.http));
    raw_down.push_back(down.seconds);
  }

  std::vector<std::string> store_args{"--workers", "0", "--artifacts", "s3://" + bucket + "/kiln",
                                      "--s3-endpoint", *endpoint, "--s3-region", s3c.region};
  for (auto& k : {"s3-part-size-mb", "s3-parallel-parts"})
    if (auto v = a.get(k))
      store_args.insert(store_args.end(), {std::string{"--"} + k, *v});
  std::vector<double> kiln_up_s, kiln_redirect_s, kiln_proxy_s;
  std::filesystem::create_directories(root / "kiln");
  std::string run_path;
  std::string worker_token;
  {
    kiln_server kiln{root / "kiln", store_args};
    client::api_client admin{{.base_url = kiln.base, .token = kiln.admin}};
    expect(admin.request("PUT", "/v1/projects/bench", R"(timeout: 30
triggers:
  - name: ci
    type: simple
    runs:
      - name: unit
        host-tag: bench
        script: s
scripts:
  s: echo
)", "application/yaml"), 200, "create project");
    auto reg = expect(admin.request("POST", "/v1/workers", R"({"name":"bench-w","tags":["bench"]})"),
                      201, "register worker");
    worker_token = reg.value("token", "");
    expect(admin.request("POST", "/v1/workers/bench-w/enlist"), 200, "enlist worker");
    expect(admin.request("POST", "/v1/projects/bench/builds", R"({"trigger":"ci"})"), 201, "trigger");
    client::api_client w{{.base_url = kiln.base, .token = worker_token, .timeout_ms = 70'000}};
    auto handed = expect(w.request("POST", "/v1/workers/bench-w/checkin?wait=30"), 200, "check-in");
    auto runs = handed.value("runs", json::array());
    check(!runs.empty(), "the worker was handed no run");
    run_path = runs[0].value("run_id", "");
    expect(w.request("POST", "/v1/runs/" + run_path + "/status", R"({"status":"RUNNING"})"), 200,
           "run started");

    for (std::uint64_t i = 0; i < rounds; ++i) {
      auto name = "out/" + std::to_string(i) + ".bin";
      auto up = run_curl({"-T", file.string(), "-H", "Authorization: Bearer " + worker_token,
                          kiln.base + "/v1/runs/" + run_path + "/artifacts/" + name},
                         curl_log);
      check(up.http == 201, "the upload through kiln answered " + std::to_string(up.http));
      kiln_up_s.push_back(up.seconds);
      // The 302 (curl does not follow it: the token must not go to S3), then the object.
      auto target = kiln.base + "/v1/projects/bench/builds/1/runs/unit/artifacts/" + name;
      subprocess loc{{"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{redirect_url}\n",
                      "-H", "Authorization: Bearer " + kiln.admin, target},
                     curl_log};
      auto line = loc.read_to_end();
      check(loc.wait() == 0, "curl failed; see " + curl_log.string());
      auto sp = line.find(' ');
      check(sp != std::string::npos && line.size() > sp + 1, "no redirect for " + target);
      auto hop = std::stod(line.substr(0, sp));
      auto url = line.substr(sp + 1);
      while (!url.empty() && (url.back() == '\n' || url.back() == '\r'))
        url.pop_back();
      auto down = run_curl({url}, curl_log);
      check(down.http == 200, "the presigned URL answered " + std::to_string(down.http));
      kiln_redirect_s.push_back(hop + down.seconds);
    }
  }
  {
    auto proxy_args = store_args;
    proxy_args.insert(proxy_args.end(), {"--s3-downloads", "proxy"});
    kiln_server kiln{root / "kiln", proxy_args};  // the same data: the run and its artifacts
    for (std::uint64_t i = 0; i < rounds; ++i) {
      auto target = kiln.base + "/v1/projects/bench/builds/1/runs/unit/artifacts/out/"
                    + std::to_string(i) + ".bin";
      auto down = run_curl({"-H", "Authorization: Bearer " + kiln.admin, target}, curl_log);
      check(down.http == 200, "the proxied download answered " + std::to_string(down.http));
      kiln_proxy_s.push_back(down.seconds);
    }
  }
  if (auto listed = s3.list(""))
    for (auto& o : *listed)
      s3.remove(o.key);

  auto mib_s = [&](double seconds) { return seconds > 0 ? bytes / seconds / (1 << 20) : 0; };
  json out{{"size_mib", size_mb},
           {"rounds", rounds},
           {"curl_upload_mib_s", mib_s(median(raw_up))},
           {"kiln_upload_mib_s", mib_s(median(kiln_up_s))},
           {"curl_download_mib_s", mib_s(median(raw_down))},
           {"kiln_proxy_download_mib_s", mib_s(median(kiln_proxy_s))},
           {"kiln_redirect_download_mib_s", mib_s(median(kiln_redirect_s))}};
  out["upload_ratio"] = median(kiln_up_s) > 0 ? median(raw_up) / median(kiln_up_s) : 0;
  out["download_ratio"] = median(kiln_proxy_s) > 0 ? median(raw_down) / median(kiln_proxy_s) : 0;
  out["redirect_download_ratio"] =
    median(kiln_redirect_s) > 0 ? median(raw_down) / median(kiln_redirect_s) : 0;
  std::printf("  upload    kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f\n",
              out["kiln_upload_mib_s"].get<double>(), out["curl_upload_mib_s"].get<double>(),
              out["upload_ratio"].get<double>());
  std::printf("  download  kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f  (proxied)\n",
              out["kiln_proxy_download_mib_s"].get<double>(), out["curl_download_mib_s"].get<double>(),
              out["download_ratio"].get<double>());
  std::printf("  redirect  kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f  (302 + presigned GET)\n",
              out["kiln_redirect_download_mib_s"].get<double>(),
              out["curl_download_mib_s"].get<double>(), out["redirect_download_ratio"].get<double>());
  if (a.has("json"))
    std::printf("%s\n", out.dump().c_str());
  return 0;
}

} // namespace kiln::cli
