#pragma once
// What the HTTP benchmarks share: a real `kiln up` child process, checked
// requests and percentiles.
#include "cli/subprocess.hpp"
#include "gateway/api_client.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::cli {

// Throws std::runtime_error(what) unless ok.
void check(bool ok, const std::string& what);

// The answer's JSON, or a thrown error naming the step.
nlohmann::json expect(const result<client::http_response>& r, int status, const std::string& step);

// Sorts `v`; the nearest-rank percentile (0 for none).
double percentile(std::vector<double>& v, double p);
// For whole-ms figures (the server stamps events in ms): the percentile
// interpolated within its 1 ms bin, as for grouped data: when 40 % of the
// values are under 6 and 30 % are 6, the median reads 5.5 + 10/30 = 5.83.
double binned_percentile(std::vector<double>& v, double p);

// `kiln up` on a free loopback port with its data and log under `dir`;
// stopped with SIGTERM.
struct kiln_server {
  std::unique_ptr<subprocess> proc;
  std::string base;   // http://127.0.0.1:PORT
  std::string admin;  // the admin token

  explicit kiln_server(const std::filesystem::path& dir, std::vector<std::string> extra = {"--workers", "0"});
  ~kiln_server();
};

// What drive_runs measured; times in ms, from the server's own stamps.
struct run_figures {
  unsigned runs = 0, failed = 0;
  double total_s = 0, runs_per_s = 0;
  double start_p50 = 0, start_p99 = 0;    // trigger -> RUNNING
  double finish_p50 = 0, finish_p99 = 0;  // trigger -> finished
  double busy_p50 = 0;                    // RUNNING -> finished
};

// Makes `project` one run of `true` on any worker, waits until `workers`
// workers are online, then runs `runs` builds of it: `clients` threads each
// trigger a build, follow its console to the end, read the run's times, and
// go again.
run_figures drive_runs(const std::string& base, const std::string& admin, const std::string& project,
                       unsigned workers, unsigned runs, unsigned clients);

} // namespace kiln::cli
