// `kiln bench e2e [--json] [--runs N] [--workers W]`: N builds of one run
// of `true` through a real `kiln up` with W local workers (child
// processes), once per executor (host, and bwrap where it works). W
// clients each trigger a build, follow its console to the end, read the
// run's times, and go again: trigger->start and trigger->finish come from
// the server's own timestamps. The baseline is the executor alone: the
// same script started bare (host) or under the same bwrap command line,
// timed here, W at a time like the runs.
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/bench_support.hpp"
#include "cli/benches.hpp"
#include "worker/executor.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace kiln::cli {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

const char* e2e_project = R"(timeout: 5
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

struct figures {
  std::string executor;
  unsigned runs = 0, failed = 0;
  double total_s = 0, runs_per_s = 0;
  double start_p50 = 0, start_p99 = 0, finish_p50 = 0, finish_p99 = 0;
  double busy_p50 = 0;  // RUNNING reported -> completion reported, per run
  double bare_p50 = 0;  // the executor alone
  double overhead() const { return busy_p50 - bare_p50; }
};

// The same script under the executor's command line, with nothing of kiln
// around it.
double bare_executor_ms(const std::string& kind, const fs::path& dir, unsigned times,
                        unsigned parallel) {
  worker::run_dirs d{dir, dir / "ws", dir / "archive", dir / "secrets", dir / "tmp", dir / "bin"};
  for (auto& p : {d.workspace, d.archive, d.secrets, d.tmp, d.bin})
    fs::create_directories(p);
  auto script = d.bin / "script";
  std::ofstream{script} << "#!/bin/sh\ntrue\n";
  ::chmod(script.c_str(), 0755);
  worker::launch_request req{script, {{"PATH", "/usr/bin:/bin"}}, d, false, nullptr, "bare"};
  auto argv = kind == "bwrap" ? worker::bwrap_argv(req) : std::vector<std::string>{script.string()};
  // As many at once as there are workers: the same load as the runs had.
  std::mutex mu;
  std::vector<double> ms;
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < parallel; ++t)
    threads.emplace_back([&] {
      for (unsigned i = 0; i < times / parallel; ++i) {
        auto t0 = clock_type::now();
        auto tree = worker::spawn_plain(argv, req.env, d.workspace);
        if (!tree) {
          ok = false;
          return;
        }
        char buf[256];
        while (::read((*tree)->output_fd(), buf, sizeof buf) > 0) {
        }
        ok = ok && (*tree)->wait() == 0;
        std::lock_guard lock{mu};
        ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
      }
    });
  for (auto& t : threads)
    t.join();
  check(ok, "the bare " + kind + " command failed");
  return percentile(ms, 0.5);
}

figures measure(const std::string& kind, unsigned runs, unsigned workers, const fs::path& dir) {
  figures f;
  f.executor = kind;
  f.runs = runs;
  fs::create_directories(dir);
  kiln_server kiln{fs::absolute(dir),
                   {"--workers", std::to_string(workers), "--executor", kind}};
  client::api_client admin{{.base_url = kiln.base, .token = kiln.admin}};
  expect(admin.request("PUT", "/v1/projects/e2e", e2e_project, "application/yaml"), 200,
         "create project");
  auto online = [&] {
    auto list = expect(admin.request("GET", "/v1/workers"), 200, "list workers");
    unsigned n = 0;
    for (auto& w : list)
      n += w.value("online", false) && w.value("enlisted", false);
    return n;
  };
  auto until = clock_type::now() + std::chrono::seconds{30};
  while (online() < workers) {
    check(clock_type::now() < until, "the local workers did not come online");
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }

  std::mutex mu;
  std::vector<double> start, finish, busy;
  std::atomic<unsigned> next{0}, failed{0};
  std::vector<std::thread> clients;
  auto t0 = clock_type::now();
  for (unsigned c = 0; c < workers; ++c)
    clients.emplace_back([&] {
      client::api_client api{{.base_url = kiln.base, .token = kiln.admin, .timeout_ms = 120'000}};
      while (next++ < runs) {
        auto b = api.request("POST", "/v1/projects/e2e/builds", R"({"trigger":"t"})");
        if (!b || b->status != 201) {
          ++failed;
          continue;
        }
        auto n = std::to_string(json::parse(b->body).value("build", 0));
        auto run = "/v1/projects/e2e/builds/" + n + "/runs/t";
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
            std::fprintf(stderr, "bench e2e: a run did not pass: %s\n", j.dump().c_str());
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
  for (auto& t : clients)
    t.join();
  f.total_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  f.failed = failed;
  f.runs_per_s = runs / f.total_s;
  f.start_p50 = binned_percentile(start, 0.5);
  f.start_p99 = binned_percentile(start, 0.99);
  f.finish_p50 = binned_percentile(finish, 0.5);
  f.finish_p99 = binned_percentile(finish, 0.99);
  f.busy_p50 = binned_percentile(busy, 0.5);
  f.bare_p50 = bare_executor_ms(kind, fs::absolute(dir) / "bare", 200, workers);
  return f;
}

void print(const figures& f) {
  std::printf("%-6s %u runs in %.2f s: %.1f runs/s; trigger->start p50 %.0f ms p99 %.0f ms; "
              "trigger->finish p50 %.0f ms p99 %.0f ms\n"
              "       per run: worker %.1f ms (p50) vs bare %s %.2f ms: overhead %.1f ms%s\n",
              f.executor.c_str(), f.runs, f.total_s, f.runs_per_s, f.start_p50, f.start_p99,
              f.finish_p50, f.finish_p99, f.busy_p50, f.executor.c_str(), f.bare_p50,
              f.overhead(), f.failed ? "  (SOME RUNS FAILED)" : "");
  std::fflush(stdout);
}

} // namespace

int bench_e2e(const args& a) {
  a.allow_only({"json", "dir", "runs", "workers"});
  auto runs = static_cast<unsigned>(a.get_u64("runs", 1000));
  auto workers = static_cast<unsigned>(a.get_u64("workers", 4));
  if (runs == 0 || workers == 0)
    throw usage_error("--runs and --workers must be positive");
  bench_dir dir{a, "e2e"};
  std::printf("bench e2e: dir=%s %u runs of `true`, %u local workers, one client per worker\n",
              dir.path().c_str(), runs, workers);
  std::vector<figures> all;
  all.push_back(measure("host", runs, workers, dir.path() / "host"));
  print(all.back());
  if (worker::default_executor_kind() == "bwrap") {
    all.push_back(measure("bwrap", runs, workers, dir.path() / "bwrap"));
    print(all.back());
  } else {
    std::printf("bwrap: not measured (bubblewrap does not work here)\n");
  }
  unsigned failed = 0;
  for (auto& f : all)
    failed += f.failed;
  if (a.has("json")) {
    json j{{"bench", "e2e"}, {"runs", runs}, {"workers", workers}, {"failed", failed}};
    for (auto& f : all) {
      auto p = f.executor == "host" ? std::string{} : f.executor + "_";
      j[p + "total_s"] = f.total_s;
      j[p + "runs_per_s"] = f.runs_per_s;
      j[p + "start_p50_ms"] = f.start_p50;
      j[p + "start_p99_ms"] = f.start_p99;
      j[p + "finish_p50_ms"] = f.finish_p50;
      j[p + "finish_p99_ms"] = f.finish_p99;
      j[p + "run_p50_ms"] = f.busy_p50;
      j[p + "bare_p50_ms"] = f.bare_p50;
      j[p + "overhead_ms"] = f.overhead();
      j[p + "run_vs_bare_ratio"] = f.bare_p50 > 0 ? f.busy_p50 / f.bare_p50 : 0;
    }
    std::printf("%s\n", j.dump().c_str());
  }
  if (failed) {
    std::fprintf(stderr, "kiln bench e2e: %u runs failed or could not be triggered\n", failed);
    return 1;
  }
  return 0;
}

} // namespace kiln::cli
