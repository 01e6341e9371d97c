#include "cli/bench_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <thread>

namespace kiln::cli {

using namespace std::chrono_literals;

void check(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error(what);
}

nlohmann::json expect(const result<client::http_response>& r, int status, const std::string& step) {
  check(r.has_value(), step + ": " + (r ? "" : r.error().message));
  if (r->status != status)
    throw std::runtime_error(step + ": HTTP " + std::to_string(r->status) + " " + r->body);
  return nlohmann::json::parse(r->body, nullptr, false);
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double binned_percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto x = percentile(v, p);
  auto below = std::lower_bound(v.begin(), v.end(), x) - v.begin();
  auto equal = std::upper_bound(v.begin(), v.end(), x) - v.begin() - below;
  auto into = (p * static_cast<double>(v.size()) - static_cast<double>(below)) / static_cast<double>(equal);
  return x - 0.5 + std::clamp(into, 0.0, 1.0);
}

kiln_server::kiln_server(const std::filesystem::path& dir, std::vector<std::string> extra) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> argv{"/proc/self/exe", "up", "--data", (dir / "data").string(),
                                "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<subprocess>(argv, dir / "kiln.log");
  auto line = proc->wait_for_line("listening on http://", 60s);
  check(line.has_value(), "kiln up did not start; see " + (dir / "kiln.log").string());
  std::smatch m;
  check(std::regex_search(*line, m, std::regex{R"((http://[0-9.]+:\d+))"}), *line);
  base = m[1];
  std::ifstream in{dir / "data" / "admin.token"};
  std::getline(in, admin);
}

kiln_server::~kiln_server() {
  proc->signal(SIGTERM);
  proc->wait();
}

namespace {

const char* const trivial_project = R"(timeout: 5
triggers:
  - name: t
    type: simple
    runs:
      - name: t
        host-tag: "*"
        script: t
scripts:
  t: |
    #!/bin/sh
    true
)";

// Polls GET /v1/workers until `n` workers are enlisted and online (30 s).
void wait_for_workers(const std::string& base, const std::string& admin, unsigned n) {
  client::api_client api{{.base_url = base, .token = admin}};
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  for (;;) {
    auto list = expect(api.request("GET", "/v1/workers"), 200, "list workers");
    unsigned online = 0;
    for (auto& w : list)
      online += w.value("online", false) && w.value("enlisted", false);
    if (online >= n)
      return;
    check(std::chrono::steady_clock::now() < until, "the workers did not come online");
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

} // namespace

run_figures drive_runs(const std::string& base, const std::string& admin, const std::string& project,
                       unsigned workers, unsigned runs, unsigned clients) {
  using nlohmann::json;
  client::api_client setup{{.base_url = base, .token = admin}};
  expect(setup.request("PUT", "/v1/projects/" + project, trivial_project, "application/yaml"), 200,
         "create project");
  wait_for_workers(base, admin, workers);
  run_figures f;
  f.runs = runs;
  std::mutex mu;
  std::vector<double> start, finish, busy;
  std::atomic<unsigned> next{0}, failed{0};
  std::vector<std::thread> threads;
  auto builds = "/v1/projects/" + project + "/builds";
  auto t0 = std::chrono::steady_clock::now();
  for (unsigned c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      client::api_client api{{.base_url = base, .token = admin, .timeout_ms = 120'000}};
      while (next++ < runs) {
        auto b = api.request("POST", builds, R"({"trigger":"t"})");
        if (!b || b->status != 201) {
          if (failed++ == 0)
            std::fprintf(stderr, "bench: a trigger failed: %s\n",
                         b ? b->body.c_str() : b.error().message.c_str());
          continue;
        }
        auto run = builds + "/" + std::to_string(json::parse(b->body).value("build", 0)) + "/runs/t";
        json j;
        for (int tries = 0; tries < 2000; ++tries) {
          api.request("GET", run + "/console?follow=1");  // returns when the run ends
          auto r = api.request("GET", run);
          j = r && r->status == 200 ? json::parse(r->body, nullptr, false)
                                    : json{{"error", r ? r->body : r.error().message}};
          auto st = j.is_object() ? j.value("status", "") : "";
          // The build's runs are queued just after the trigger's answer.
          if (r && r->status == 404) {
            std::this_thread::sleep_for(std::chrono::milliseconds{1});
            continue;
          }
          if (st != "QUEUED" && st != "RUNNING")
            break;
        }
        if (!j.is_object() || j.value("status", "") != "PASSED") {
          if (failed++ == 0)
            std::fprintf(stderr, "bench: a run did not pass: %s\n", j.dump().c_str());
          continue;
        }
        auto q = j.value("queued_ms", 0.0), s = j.value("started_ms", 0.0),
             e = j.value("finished_ms", 0.0);
        std::lock_guard lock{mu};
        start.push_back(s - q);
        finish.push_back(e - q);
        busy.push_back(e - s);
      }
    });
  for (auto& t : threads)
    t.join();
  f.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  f.failed = failed;
  f.runs_per_s = runs / f.total_s;
  f.start_p50 = binned_percentile(start, 0.5);
  f.start_p99 = binned_percentile(start, 0.99);
  f.finish_p50 = binned_percentile(finish, 0.5);
  f.finish_p99 = binned_percentile(finish, 0.99);
  f.busy_p50 = binned_percentile(busy, 0.5);
  return f;
}

} // namespace kiln::cli
