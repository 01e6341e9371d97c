// `kiln bench gateway [--json]`: the HTTP API of a real `kiln up` (a child
// process) against nginx serving the same bytes, in one run on one machine.
//   get       GET of a build's JSON, wrk with C connections, against nginx
//             serving that JSON as a static file with the same wrk settings
//   trigger   POST of a build trigger (3 runs: 5 commits each), wrk
//   follow    F concurrent SSE followers of one run's console; a worker
//             writes N timestamped chunks; latency from just before the
//             worker sends a chunk to each follower having its line
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/bench_support.hpp"
#include "cli/benches.hpp"
#include "cli/subprocess.hpp"
#include "gateway/api_client.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kiln::cli {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* bench_project = R"(timeout: 30
triggers:
  - name: ci
    type: simple
    runs:
      - name: unit
        host-tag: linux
        script: test
      - name: lint
        host-tag: linux
        script: test
      - name: docs
        host-tag: linux
        script: test
scripts:
  test: |
    #!/bin/sh
    echo ok
)";

std::uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// ---- wrk ----

struct load {
  double per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  std::uint64_t requests = 0, failed = 0;  // non-2xx/3xx and socket errors
};

double to_ms(double value, const std::string& unit) {
  if (unit == "us")
    return value / 1000;
  if (unit == "s")
    return value * 1000;
  if (unit == "m")
    return value * 60'000;
  return value;  // ms
}

load parse_wrk(const std::string& out) {
  load l;
  std::smatch m;
  auto find = [&](const char* re) { return std::regex_search(out, m, std::regex{re}); };
  check(find(R"(Requests/sec:\s+([0-9.]+))"), "wrk printed no rate:\n" + out);
  l.per_s = std::stod(m[1]);
  if (find(R"(\n\s+50%\s+([0-9.]+)(us|ms|s|m))"))
    l.p50_ms = to_ms(std::stod(m[1]), m[2]);
  if (find(R"(\n\s+99%\s+([0-9.]+)(us|ms|s|m))"))
    l.p99_ms = to_ms(std::stod(m[1]), m[2]);
  if (find(R"((\d+) requests in)"))
    l.requests = std::stoull(m[1]);
  if (find(R"(Non-2xx or 3xx responses:\s+(\d+))"))
    l.failed += std::stoull(m[1]);
  if (find(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))"))
    l.failed += std::stoull(m[1]) + std::stoull(m[2]) + std::stoull(m[3]) + std::stoull(m[4]);
  return l;
}

struct wrk_settings {
  unsigned connections = 64;
  unsigned seconds = 5;
  std::string token;
  std::filesystem::path script;  // lua, for a POST
};

load run_wrk(const wrk_settings& s, const std::string& url) {
  std::vector<std::string> argv{"wrk", "-t2", "-c" + std::to_string(s.connections),
                                "-d" + std::to_string(s.seconds) + "s", "--latency"};
  if (!s.token.empty())
    argv.insert(argv.end(), {"-H", "Authorization: Bearer " + s.token});
  if (!s.script.empty())
    argv.insert(argv.end(), {"-s", s.script.string()});
  argv.push_back(url);
  auto [status, out] = run_capture(argv);
  check(status != 127, "wrk is not installed (deploy/dev.sh installs it)");
  check(status == 0, "wrk exited " + std::to_string(status) + ":\n" + out);
  return parse_wrk(out);
}

// ---- nginx, the ceiling ----

class nginx_server {
 public:
  nginx_server(const std::filesystem::path& dir, const std::filesystem::path& root) {
    port_ = free_port();
    std::filesystem::create_directories(dir / "tmp");
    auto conf = dir / "nginx.conf";
    std::ofstream out{conf};
    // Two workers for two cores, like kiln's two HTTP threads; no access
    // log, like kiln (which logs no line per request either).
    if (geteuid() == 0)
      out << "user root;\n";
    out << "worker_processes 2;\ndaemon off;\npid " << (dir / "nginx.pid").string() << ";\n"
        << "error_log " << (dir / "nginx-error.log").string() << " warn;\n"
        << "events { worker_connections 1024; }\n"
        << "http {\n  access_log off;\n  keepalive_requests 1000000;\n"
        << "  client_body_temp_path " << (dir / "tmp/body").string() << ";\n"
        << "  proxy_temp_path " << (dir / "tmp/proxy").string() << ";\n"
        << "  fastcgi_temp_path " << (dir / "tmp/fastcgi").string() << ";\n"
        << "  server {\n    listen 127.0.0.1:" << port_ << ";\n    root " << root.string()
        << ";\n    default_type application/json;\n  }\n}\n";
    out.close();
    proc_ = std::make_unique<subprocess>(
      std::vector<std::string>{"nginx", "-c", conf.string(), "-p", dir.string(), "-e",
                               (dir / "nginx-error.log").string()},
      dir / "nginx-stderr.log");
  }
  ~nginx_server() {
    proc_->signal(SIGQUIT);
    proc_->wait();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::uint16_t port_ = 0;
  std::unique_ptr<subprocess> proc_;
};

// Polls until `url` answers 200 (a fresh server takes a moment).
void wait_ready(const std::string& base, const std::string& target) {
  client::api_client c{{.base_url = base, .timeout_ms = 2000}};
  auto deadline = clock::now() + 20s;
  while (clock::now() < deadline) {
    auto r = c.request("GET", target);
    if (r && r->status == 200)
      return;
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error(base + target + " did not answer 200 within 20 s");
}

// ---- console followers ----

// What the worker thread and the followers' loop share.
struct follow_board {
  explicit follow_board(std::size_t chunks) : sent_ns(chunks) {}
  std::vector<std::atomic<std::int64_t>> sent_ns;  // when each line was sent
  std::vector<double> samples;                     // the followers' loop only
  std::atomic<unsigned> warm{0};                   // followers caught up
  std::atomic<std::size_t> delivered{0};           // = samples.size()
};

// One SSE follower; its lines are scanned for "@k<6 digits>" markers.
struct follower {
  follow_board* board = nullptr;
  std::string carry;  // an incomplete line
  std::vector<bool> seen;
  bool warm = false;  // has the warm-up line: connected and caught up
};

std::size_t on_follow_bytes(char* data, std::size_t size, std::size_t n, void* user) {
  auto now = clock::now().time_since_epoch().count();
  auto& f = *static_cast<follower*>(user);
  f.carry.append(data, size * n);
  std::size_t start = 0;
  for (std::size_t nl; (nl = f.carry.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line{f.carry.data() + start, nl - start};
    if (!f.warm && line.find("@warm") != std::string_view::npos) {
      f.warm = true;
      f.board->warm.fetch_add(1);
    }
    for (std::size_t at = 0; (at = line.find("@k", at)) != std::string_view::npos; at += 2) {
      if (at + 8 > line.size())
        break;
      std::size_t k = std::stoul(std::string{line.substr(at + 2, 6)});
      if (k < f.seen.size() && !f.seen[k]) {
        f.seen[k] = true;
        auto sent = f.board->sent_ns[k].load(std::memory_order_acquire);
        f.board->samples.push_back(static_cast<double>(now - sent) / 1e6);
        f.board->delivered.fetch_add(1);
      }
    }
  }
  f.carry.erase(0, start);
  return size * n;
}

struct follow_figures {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::size_t missing = 0;
};

struct follow_settings {
  std::string base, admin, worker_token, run_path;  // run_path: "bench/1/unit"
  unsigned followers = 200;
  unsigned chunks = 300;
  std::chrono::milliseconds interval{10};
};

follow_figures follow(const follow_settings& s) {
  follow_board board{s.chunks};
  board.samples.reserve(std::size_t{s.followers} * s.chunks);
  std::vector<follower> fs(s.followers);

  // A run id "<project>/<build>/<run>" as the console's read path.
  auto first = s.run_path.find('/'), second = s.run_path.find('/', first + 1);
  auto url = s.base + "/v1/projects/" + s.run_path.substr(0, first) + "/builds/" +
             s.run_path.substr(first + 1, second - first - 1) + "/runs/" +
             s.run_path.substr(second + 1) + "/console?follow=1";
  std::string auth = "Authorization: Bearer " + s.admin;
  curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
  headers = curl_slist_append(headers, "Accept: text/event-stream");
  CURLM* multi = curl_multi_init();
  std::vector<CURL*> easies;
  for (auto& f : fs) {
    f.board = &board;
    f.seen.assign(s.chunks, false);
    CURL* e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_follow_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(multi, e);
    easies.push_back(e);
  }

  // The worker: a warm-up line, then timed chunks, then the run's end.
  std::atomic<bool> writer_failed{false};
  std::string writer_error;
  std::thread writer{[&] {
    try {
      client::api_client w{{.base_url = s.base, .token = s.worker_token}};
      auto target = "/v1/runs/" + s.run_path + "/console?offset=";
      std::uint64_t offset = 0;
      auto send = [&](const std::string& bytes) {
        auto r = w.request("POST", target + std::to_string(offset), bytes,
                           "application/octet-stream");
        expect(r, 200, "console chunk");
        offset += bytes.size();
      };
      auto deadline = clock::now() + 60s;
      while (board.warm.load() < s.followers) {
        check(clock::now() < deadline, "followers did not connect within 60 s");
        if (offset == 0)
          send("@warm\n");
        std::this_thread::sleep_for(5ms);
      }
      // A console line of a typical build log's length.
      std::string pad(120, '.');
      auto next = clock::now();
      for (unsigned k = 0; k < s.chunks; ++k) {
        std::this_thread::sleep_until(next);
        next += s.interval;
        char mark[16];
        std::snprintf(mark, sizeof mark, "@k%06u ", k);
        board.sent_ns[k].store(clock::now().time_since_epoch().count(), std::memory_order_release);
        send(mark + pad + "\n");
      }
      deadline = clock::now() + 30s;
      while (board.delivered.load() < std::size_t{s.followers} * s.chunks && clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
      expect(w.request("POST", "/v1/runs/" + s.run_path + "/status",
                       R"({"status":"PASSED","exit_code":0})"),
             200, "run status");
    } catch (const std::exception& e) {
      writer_error = e.what();
      writer_failed = true;
    }
  }};

  int running = 1;
  auto deadline = clock::now() + 180s;
  while (running > 0 && clock::now() < deadline) {
    curl_multi_perform(multi, &running);
    curl_multi_poll(multi, nullptr, 0, 50, nullptr);
    if (writer_failed)
      break;
  }
  writer.join();
  for (auto* e : easies) {
    curl_multi_remove_handle(multi, e);
    curl_easy_cleanup(e);
  }
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  check(!writer_failed, writer_error);
  check(running == 0, "follow streams did not end when the run ended");

  follow_figures out;
  auto& samples = board.samples;
  out.missing = std::size_t{s.followers} * s.chunks - samples.size();
  out.p50_ms = percentile(samples, 0.50);
  out.p99_ms = percentile(samples, 0.99);
  out.max_ms = samples.empty() ? 0 : samples.back();
  return out;
}

// ---- the server under test ----

} // namespace

int bench_gateway(const args& a) {
  a.allow_only({"json", "dir", "seconds", "connections", "followers", "chunks"});
  bool as_json = a.has("json");
  wrk_settings load_settings;
  load_settings.connections = static_cast<unsigned>(a.get_u64("connections", 64));
  load_settings.seconds = static_cast<unsigned>(a.get_u64("seconds", 5));
  follow_settings fset;
  fset.followers = static_cast<unsigned>(a.get_u64("followers", 200));
  fset.chunks = static_cast<unsigned>(a.get_u64("chunks", 300));
  if (load_settings.connections == 0 || load_settings.seconds == 0 || fset.followers == 0 ||
      fset.chunks == 0 || fset.chunks > 999'999)
    throw usage_error("--connections, --seconds, --followers and --chunks must be positive");

  bench_dir dir{a, "gateway"};
  auto root = std::filesystem::absolute(dir.path());  // nginx resolves paths from its prefix
  std::printf("bench gateway: dir=%s wrk -t2 -c%u -d%us; %u followers x %u chunks\n",
              dir.path().string().c_str(), load_settings.connections, load_settings.seconds,
              fset.followers, fset.chunks);
  std::fflush(stdout);

  kiln_server kiln{root};
  client::api_client admin{{.base_url = kiln.base, .token = kiln.admin}};
  expect(admin.request("PUT", "/v1/projects/bench", bench_project, "application/yaml"), 200,
         "create project");
  auto reg = expect(admin.request("POST", "/v1/workers",
                                  R"({"name":"bench-w","tags":["linux"],"concurrency":1})"),
                    201, "register worker");
  fset.worker_token = reg.value("token", "");
  expect(admin.request("POST", "/v1/workers/bench-w/enlist"), 200, "enlist worker");
  expect(admin.request("POST", "/v1/projects/bench/builds", R"({"trigger":"ci"})"), 201,
         "trigger");
  {
    client::api_client w{{.base_url = kiln.base, .token = fset.worker_token, .timeout_ms = 70'000}};
    auto handed = expect(w.request("POST", "/v1/workers/bench-w/checkin?wait=30"), 200, "check-in");
    auto runs = handed.value("runs", json::array());
    check(!runs.empty(), "the worker was handed no run");
    fset.run_path = runs[0].value("run_id", "");
    expect(w.request("POST", "/v1/runs/" + fset.run_path + "/status", R"({"status":"RUNNING"})"),
           200, "run started");
  }

  // The same bytes for both servers: kiln's answer, saved as nginx's file.
  auto build_target = std::string{"/v1/projects/bench/builds/1"};
  auto build_json = admin.request("GET", build_target);
  expect(build_json, 200, "read build");
  auto www = root / "www";
  std::filesystem::create_directories(www / "v1/projects/bench/builds");
  std::ofstream{www / "v1/projects/bench/builds/1"} << build_json->body;

  auto read_settings = load_settings;
  read_settings.token = kiln.admin;
  auto kiln_get = run_wrk(read_settings, kiln.base + build_target);
  load nginx_get;
  {
    nginx_server nginx{root / "nginx", www};
    wait_ready(nginx.url(), build_target);
    nginx_get = run_wrk(load_settings, nginx.url() + build_target);
  }
  double get_ratio = nginx_get.per_s > 0 ? kiln_get.per_s / nginx_get.per_s : 0;
  std::printf("nginx GET (static file, %zu bytes):  %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n",
              build_json->body.size(), nginx_get.per_s, nginx_get.p50_ms, nginx_get.p99_ms);
  std::printf("kiln GET build JSON:                %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  "
              "ratio %.2f  failed %llu\n",
              kiln_get.per_s, kiln_get.p50_ms, kiln_get.p99_ms, get_ratio,
              static_cast<unsigned long long>(kiln_get.failed));
  std::fflush(stdout);

  fset.base = kiln.base;
  fset.admin = kiln.admin;
  auto followed = follow(fset);
  std::printf("console to %u SSE followers:        p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  "
              "missing %zu\n",
              fset.followers, followed.p50_ms, followed.p99_ms, followed.max_ms, followed.missing);
  std::fflush(stdout);

  auto trigger_settings = read_settings;
  trigger_settings.script = root / "trigger.lua";
  std::ofstream{trigger_settings.script}
    << "wrk.method = \"POST\"\nwrk.body = '{\"trigger\":\"ci\"}'\n"
       "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
  auto trigger = run_wrk(trigger_settings, kiln.base + "/v1/projects/bench/builds");
  std::printf("kiln POST trigger (3 runs):         %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  "
              "failed %llu\n",
              trigger.per_s, trigger.p50_ms, trigger.p99_ms,
              static_cast<unsigned long long>(trigger.failed));

  if (as_json) {
    json j{{"bench", "gateway"},
           {"connections", load_settings.connections},
           {"seconds", load_settings.seconds},
           {"build_json_bytes", build_json->body.size()},
           {"nginx_get_per_s", nginx_get.per_s},
           {"nginx_get_p99_ms", nginx_get.p99_ms},
           {"get_per_s", kiln_get.per_s},
           {"get_p50_ms", kiln_get.p50_ms},
           {"get_p99_ms", kiln_get.p99_ms},
           {"get_failed", kiln_get.failed},
           {"get_vs_nginx_ratio", get_ratio},
           {"trigger_per_s", trigger.per_s},
           {"trigger_p50_ms", trigger.p50_ms},
           {"trigger_p99_ms", trigger.p99_ms},
           {"trigger_failed", trigger.failed},
           {"followers", fset.followers},
           {"follow_chunks", fset.chunks},
           {"follow_p50_ms", followed.p50_ms},
           {"follow_p99_ms", followed.p99_ms},
           {"follow_max_ms", followed.max_ms},
           {"follow_missing", followed.missing}};
    std::printf("%s\n", j.dump().c_str());
  }
  bool failed = kiln_get.failed || trigger.failed || followed.missing;
  if (failed)
    std::fprintf(stderr, "kiln bench gateway: some requests failed (see the figures)\n");
  return failed ? 1 : 0;
}

} // namespace kiln::cli
