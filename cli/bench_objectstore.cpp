// `kiln bench objectstore --s3-endpoint URL [--size-mb 64] [--rounds 5] [--json]`:
// a 64 MiB artifact through a real `kiln up --artifacts s3://…` against the
// same bytes put to and got from the S3 server straight by `curl`, in one
// run (credentials from the AWS environment or credentials file):
//   upload      worker -> gateway (streamed, sha256) -> S3   vs  curl -T to a presigned PUT
//   download    gateway proxying S3's bytes (--s3-downloads proxy)  vs  curl of a presigned GET
//   redirect    the gateway's 302 plus curl of its presigned URL    vs  the same curl alone
// Rounds interleave curl and kiln; each figure is the median of the rounds,
// each ratio the median of the rounds' ratios (throughput, kiln / curl).
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

// A `kiln up` on the S3 store with one run in progress, and the token of
// the worker it is handed to: what a worker uploading artifacts has.
struct bench_node {
  kiln_server server;
  std::string worker_token;
  std::string run_path;

  bench_node(const std::filesystem::path& dir, const std::vector<std::string>& args)
    : server(dir, args) {
    client::api_client admin{{.base_url = server.base, .token = server.admin}};
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
    client::api_client w{{.base_url = server.base, .token = worker_token, .timeout_ms = 70'000}};
    auto handed = expect(w.request("POST", "/v1/workers/bench-w/checkin?wait=30"), 200, "check-in");
    auto runs = handed.value("runs", json::array());
    check(!runs.empty(), "the worker was handed no run");
    run_path = runs[0].value("run_id", "");
    expect(w.request("POST", "/v1/runs/" + run_path + "/status", R"({"status":"RUNNING"})"), 200,
           "run started");
  }
};

} // namespace

int bench_objectstore(const args& a) {
  a.allow_only({"s3-endpoint", "s3-region", "size-mb", "rounds", "json", "dir", "s3-part-size-mb",
                "s3-parallel-parts", "s3-single-put-max-mb"});
  auto endpoint = a.get("s3-endpoint");
  if (!endpoint)
    throw usage_error("kiln bench objectstore needs --s3-endpoint URL (an S3-compatible server; "
                      "deploy/radosgw/radosgw.sh start DIR runs one on loopback) and "
                      "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
  auto size_mb = a.get_u64("size-mb", 64);
  auto rounds = std::max<std::uint64_t>(1, a.get_u64("rounds", 5));
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

  std::vector<std::string> store_args{"--workers", "0", "--artifacts", "s3://" + bucket + "/kiln",
                                      "--s3-endpoint", *endpoint, "--s3-region", s3c.region};
  for (auto& k : {"s3-part-size-mb", "s3-parallel-parts", "s3-single-put-max-mb"})
    if (auto v = a.get(k))
      store_args.insert(store_args.end(), {std::string{"--"} + k, *v});
  auto proxy_args = store_args;
  proxy_args.insert(proxy_args.end(), {"--s3-downloads", "proxy"});
  // Two nodes on the one bucket, one per download mode, each with a run to
  // upload to; both up for the whole bench so that rounds can interleave.
  bench_node redirecting{root / "redirect", store_args};
  bench_node proxying{root / "proxy", proxy_args};
  auto upload = [&](bench_node& n, const std::string& name) {
    auto r = run_curl({"-T", file.string(), "-H", "Authorization: Bearer " + n.worker_token,
                       n.server.base + "/v1/runs/" + n.run_path + "/artifacts/" + name},
                      curl_log);
    check(r.http == 201, "the upload through kiln answered " + std::to_string(r.http));
    return r.seconds;
  };
  auto artifact_url = [](bench_node& n, const std::string& name) {
    return n.server.base + "/v1/projects/bench/builds/1/runs/unit/artifacts/" + name;
  };

  // Each round measures curl and kiln back to back, so the machine's drift
  // (radosgw compacting, a neighbour's load) hits both alike; the ratios
  // are the median of each round's ratio.
  std::vector<double> raw_up, raw_down, kiln_up_s, kiln_redirect_s, kiln_proxy_s;
  std::vector<double> up_ratio, proxy_ratio, redirect_ratio;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    auto name = "out/" + std::to_string(i) + ".bin";
    auto key = "raw/" + std::to_string(i) + ".bin";
    auto raw_upload = [&] {
      auto put = run_curl({"-T", file.string(), s3.presigned_put(key, 600, now())}, curl_log);
      check(put.http == 200, "curl PUT to S3 answered " + std::to_string(put.http));
      raw_up.push_back(put.seconds);
    };
    auto kiln_upload = [&] {
      kiln_up_s.push_back(upload(redirecting, name));
      upload(proxying, name);  // untimed: the proxying node needs its own record
    };
    auto raw_download = [&] {
      auto get = run_curl({s3.presigned_get(key, 600, now())}, curl_log);
      check(get.http == 200, "curl GET from S3 answered " + std::to_string(get.http));
      raw_down.push_back(get.seconds);
    };
    auto kiln_downloads = [&] {
      // The 302 (curl does not follow it: the token must not go to S3), then the object.
      auto target = artifact_url(redirecting, name);
      subprocess loc{{"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{redirect_url}\n",
                      "-H", "Authorization: Bearer " + redirecting.server.admin, target},
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
      auto proxied = run_curl({"-H", "Authorization: Bearer " + proxying.server.admin,
                               artifact_url(proxying, name)},
                              curl_log);
      check(proxied.http == 200, "the proxied download answered " + std::to_string(proxied.http));
      kiln_proxy_s.push_back(proxied.seconds);
    };
    // Who goes first alternates: what comes right after a write (radosgw
    // still settling it) is slower, and must not always be the same side.
    if (i % 2 == 0) {
      raw_upload(), kiln_upload(), raw_download(), kiln_downloads();
    } else {
      kiln_upload(), raw_upload(), kiln_downloads(), raw_download();
    }

    up_ratio.push_back(raw_up.back() / kiln_up_s.back());
    redirect_ratio.push_back(raw_down.back() / kiln_redirect_s.back());
    proxy_ratio.push_back(raw_down.back() / kiln_proxy_s.back());
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
  out["upload_ratio"] = median(up_ratio);
  // The default download (a 302 to a presigned URL) is what download_ratio
  // measures; the proxied one (--s3-downloads proxy) has its own ratio.
  out["download_ratio"] = median(redirect_ratio);
  out["proxy_download_ratio"] = median(proxy_ratio);
  std::printf("  upload    kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f\n",
              out["kiln_upload_mib_s"].get<double>(), out["curl_upload_mib_s"].get<double>(),
              out["upload_ratio"].get<double>());
  std::printf("  download  kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f  (proxied)\n",
              out["kiln_proxy_download_mib_s"].get<double>(), out["curl_download_mib_s"].get<double>(),
              out["proxy_download_ratio"].get<double>());
  std::printf("  redirect  kiln %7.1f MiB/s   curl %7.1f MiB/s   ratio %.2f  (302 + presigned GET, the default)\n",
              out["kiln_redirect_download_mib_s"].get<double>(),
              out["curl_download_mib_s"].get<double>(), out["download_ratio"].get<double>());
  if (a.has("json"))
    std::printf("%s\n", out.dump().c_str());
  return 0;
}

} // namespace kiln::cli
