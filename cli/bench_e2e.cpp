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

struct figures : run_figures {
  std::string executor;
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
  fs::create_directories(dir);
  kiln_server kiln{fs::absolute(dir),
                   {"--workers", std::to_string(workers), "--executor", kind}};
  figures f;
  static_cast<run_figures&>(f) = drive_runs(kiln.base, kiln.admin, "e2e", workers, runs, workers);
  f.executor = kind;
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
