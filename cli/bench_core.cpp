// `kiln bench core [--json]`: the domain core through its actors against the
// raw event log, in one run on one disk.
//   raw_append        single-event commits straight to the log, C in flight
//   trigger           trigger-build (3 runs) through the actors, C in flight;
//                     each makes 5 commits (number, build, 3 queued runs)
//   complete          run start + completion reports through the actors
//   restart           a fresh process starting a core on a log of 100,000
//                     finished builds (1.2 M events): time to ready and RSS,
//                     against iterating the same records with RocksDB alone
//   actors            memory per live aggregate actor, and after passivation
#include "actors/core.hpp"
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/benches.hpp"
#include "cli/subprocess.hpp"
#include "events/streams.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <malloc.h>

namespace kiln::cli {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(clock::time_point t0) {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

// Bytes malloc has handed out and not had back: unlike RSS, it falls when
// actors are freed.
double heap_in_use() { return static_cast<double>(mallinfo2().uordblks); }

double rss_mb() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

constexpr const char* bench_project = R"(timeout: 5
triggers:
  - name: ci
    type: simple
    runs:
      - name: unit-test
        host-tag: bench
        script: s
      - name: lint
        host-tag: bench
        script: s
      - name: docs
        host-tag: bench
        script: s
scripts:
  s: |
    #!/bin/sh
    echo ok
)";

// At most `limit` operations in flight; wait() returns when all are done.
class window {
 public:
  explicit window(std::size_t limit) : limit_(limit) {}
  void acquire() {
    std::unique_lock lock{mu_};
    cv_.wait(lock, [&] { return in_flight_ < limit_; });
    ++in_flight_;
  }
  void release(bool ok) {
    std::lock_guard lock{mu_};
    --in_flight_;
    failures_ += ok ? 0 : 1;
    cv_.notify_all();
  }
  std::size_t wait() {
    std::unique_lock lock{mu_};
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    return failures_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t limit_;
  std::size_t in_flight_ = 0;
  std::size_t failures_ = 0;
};

std::unique_ptr<storage::rocksdb_event_log> open_log(const std::filesystem::path& dir) {
  auto log = storage::rocksdb_event_log::open({.dir = dir});
  if (!log)
    throw std::runtime_error("open " + dir.string() + ": " + log.error().message);
  return std::move(*log);
}

storage::secret_box bench_box() { return *storage::secret_box::from_hex(std::string(64, '7')); }

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

double raw_append(const std::filesystem::path& dir, std::size_t count, std::size_t clients) {
  auto log = open_log(dir);
  window w{clients};
  auto t0 = clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    storage::append_request r;
    r.stream = {"run/raw/" + std::to_string(i)};
    r.expected = {0};
    r.meta = {now_ns(), "bench", "raw-" + std::to_string(i), ""};
    r.events.push_back(run_queued{"raw", 1, std::to_string(i), "bench", "{}", 1, 300});
    w.acquire();
    log->append_async(std::move(r), [&](result<storage::append_receipt> x) { w.release(bool(x)); });
  }
  if (w.wait() > 0)
    throw std::runtime_error("raw appends failed");
  return count / seconds_since(t0);
}

struct core_figures {
  double triggers_per_s = 0;
  double trigger_commits_per_s = 0;
  double completes_per_s = 0;
  double bytes_per_actor = 0;
  double rss_live_mb = 0;
  double rss_passivated_mb = 0;
  std::size_t live_actors = 0;
  double heap_left_after_passivation = 0;  // bytes per actor still held once they are gone
};

core_figures through_actors(const std::filesystem::path& dir, std::size_t builds,
                            std::size_t clients) {
  core_figures f;
  auto log = open_log(dir);
  auto box = bench_box();
  core::core_config cfg;
  cfg.passivate_after = 3s;
  core::core node{*log, box, cfg};
  if (auto s = node.start(); !s)
    throw std::runtime_error(s.error().message);
  if (!node.call(core::put_project{"bench", bench_project}))
    throw std::runtime_error("put project");

  // (a) trigger-build, C in flight.
  window w{clients};
  auto seq0 = log->last_seq();
  auto t0 = clock::now();
  for (std::size_t i = 0; i < builds; ++i) {
    w.acquire();
    node.submit(core::trigger_build{"bench", "ci", {}, "", "", "bench", 0}, {},
                [&](result<core::reply> r) { w.release(bool(r)); });
  }
  if (w.wait() > 0)
    throw std::runtime_error("triggers failed");
  // The runs are queued after the reply: count them in.
  // 5 commits a build: its number, the build, 3 queued runs.
  std::size_t runs = builds * 3;
  while (log->last_seq().value < seq0.value + 5 * builds)
    std::this_thread::sleep_for(200us);
  auto trigger_s = seconds_since(t0);
  f.triggers_per_s = builds / trigger_s;
  f.trigger_commits_per_s = (log->last_seq().value - seq0.value) / trigger_s;

  f.rss_live_mb = rss_mb();

  // (a) complete-run: workers take every run, start and pass it.
  std::vector<std::pair<std::string, std::string>> workers;  // name, token
  for (std::size_t i = 0; i * 1000 < runs; ++i) {
    auto name = "bench-worker-" + std::to_string(i);
    auto token = node.call(core::register_worker{name, {"bench"}, 1000, "{}"});
    if (!token || !node.call(core::enlist_worker{name}))
      throw std::runtime_error("register worker");
    workers.emplace_back(name, std::get<core::worker_token>(*token).token);
  }
  std::map<std::string, std::vector<core::handed_run>> held;
  auto handed_count = [&] {
    std::size_t n = 0;
    for (auto& [w, list] : held)
      n += list.size();
    return n;
  };
  for (auto deadline = clock::now() + 120s; handed_count() < runs && clock::now() < deadline;)
    for (auto& [name, token] : workers)
      if (auto r = node.call(core::worker_checkin{name, token}))
        held[name] = std::get<core::checkin_reply>(*r).runs;
  if (handed_count() < runs)
    throw std::runtime_error("the workers were not handed every run");
  auto t1 = clock::now();
  for (auto& [name, list] : held)
    for (auto& h : list)
      for (auto st : {status::running, status::passed}) {
        w.acquire();
        node.submit(core::report_run{h.run, name, st, 0, ""}, {},
                    [&](result<core::reply> r) { w.release(bool(r)); });
      }
  if (w.wait() > 0)
    throw std::runtime_error("run reports failed");
  f.completes_per_s = runs / seconds_since(t1);
  for (auto deadline = clock::now() + 120s; clock::now() < deadline;) {
    auto b = node.read(core::get_build{"bench", static_cast<std::uint32_t>(builds)});
    if (b && std::get<domain::build_summary>(*b).completed)
      break;
    std::this_thread::sleep_for(5ms);
  }

  // (c) after passivation.
  for (auto deadline = clock::now() + 60s; clock::now() < deadline;) {
    if (node.stats().live_actors == 0)
      break;
    std::this_thread::sleep_for(100ms);
  }
  f.rss_passivated_mb = rss_mb();

  // (c) memory per live actor: wake one actor per run (a query loads its
  // state), measure the heap, let them passivate, measure again.
  auto in0 = heap_in_use();
  for (auto& [name, list] : held)
    for (auto& h : list)
      node.read(core::get_run{h.run});
  f.live_actors = node.stats().live_actors;
  auto in1 = heap_in_use();
  for (auto deadline = clock::now() + 60s; clock::now() < deadline;) {
    if (node.stats().live_actors == 0)
      break;
    std::this_thread::sleep_for(100ms);
  }
  auto in2 = heap_in_use();
  if (f.live_actors > 0) {
    f.bytes_per_actor = (in1 - in0) / double(f.live_actors);
    f.heap_left_after_passivation = (in2 - in0) / double(f.live_actors);
  }
  return f;
}

// 100,000 finished builds of 3 runs, written straight to the log.
std::size_t generate_history(const std::filesystem::path& dir, std::uint32_t builds) {
  auto log = open_log(dir);
  window w{512};
  std::size_t events = 0;
  auto put = [&](std::string stream, std::uint64_t expected, std::vector<event> evs) {
    storage::append_request r;
    r.stream = {std::move(stream)};
    r.expected = {expected};
    r.meta = {now_ns(), "bench", "", ""};
    events += evs.size();
    r.events = std::move(evs);
    w.acquire();
    log->append_async(std::move(r), [&](result<storage::append_receipt> x) { w.release(bool(x)); });
  };
  put(streams::project("bench").value, 0,
      {project_created{"bench"}, project_definition_updated{1, bench_project, "h"}});
  put(streams::worker("w").value, 0, {worker_registered{"w", {"bench"}, 4, "{}", "t"}});
  const std::vector<std::string> runs{"unit-test", "lint", "docs"};
  for (std::uint32_t n = 1; n <= builds; ++n) {
    build_number_allocated a;
    a.number = n;
    a.trigger = "ci";
    a.definition_version = 1;
    put(streams::project("bench").value, n + 1, {a});
    put(streams::build("bench", n).value, 0,
        {build_created{"bench", n, "ci", {}, "", "", "bench", 1, runs, 0, 0}});
    for (auto& r : runs) {
      auto s = streams::run("bench", n, r).value;
      put(s, 0, {run_queued{"bench", n, r, "bench", "{\"run\":\"" + r + "\"}", 1, 300}});
      put(s, 1, {run_assigned{"w", 1}});
      put(s, 2, {run_completed{status::passed, 0, ""}});
    }
    put(streams::build("bench", n).value, 1, {build_completed{status::passed}});
  }
  if (w.wait() > 0)
    throw std::runtime_error("generating the history failed");
  return events;
}

double raw_scan_s(const std::filesystem::path& dir) {
  auto log = open_log(dir);
  auto t0 = clock::now();
  std::size_t n = 0;
  if (!log->scan_records({0}, false, [&](std::uint64_t, std::string_view) { return ++n > 0; }))
    throw std::runtime_error("scan failed");
  return seconds_since(t0);
}

struct startup {
  double seconds = 0;
  double rss_mb = 0;
};

// In a fresh process, so that RSS is the core's alone.
startup measure_startup(const std::filesystem::path& dir) {
  auto [status, text] =
    run_capture({"/proc/self/exe", "bench", "core", "--startup-only", dir.string()});
  startup s;
  if (status != 0 || std::sscanf(text.c_str(), "startup %lf %lf", &s.seconds, &s.rss_mb) != 2)
    throw std::runtime_error("startup child said: " + text);
  return s;
}

} // namespace

int bench_core_startup_only(const std::filesystem::path& dir) {
  spdlog::set_level(spdlog::level::warn);
  auto t0 = clock::now();
  auto log = open_log(dir);
  auto box = bench_box();
  core::core node{*log, box};
  if (auto s = node.start(); !s) {
    std::fprintf(stderr, "start: %s\n", s.error().message.c_str());
    return 1;
  }
  // Ready: a query answers from the rebuilt projections.
  auto b = node.read(core::get_build{"bench", 1});
  auto seconds = seconds_since(t0);
  if (!b)
    return 1;
  std::printf("startup %.3f %.1f\n", seconds, rss_mb());
  return 0;
}

int bench_core(const args& a) {
  a.allow_only({"json", "dir", "builds", "clients", "history", "startup-only"});
  bool json = a.has("json");
  bench_dir scratch{a, "core"};
  auto& dir = scratch.path();
  auto builds = a.get_u64("builds", 2000);
  auto clients = a.get_u64("clients", 64);
  auto history = static_cast<std::uint32_t>(a.get_u64("history", 100000));
  spdlog::set_level(spdlog::level::warn);
  std::printf("bench core: dir=%s builds=%llu clients=%llu history=%u builds\n",
              std::filesystem::absolute(dir).c_str(), (unsigned long long)builds,
              (unsigned long long)clients, history);

  auto raw = raw_append(dir / "raw", builds * 5, clients);
  std::printf("raw log append, %3llu in flight:          %10.0f commits/s\n",
              (unsigned long long)clients, raw);
  auto f = through_actors(dir / "core", builds, clients);
  auto ratio = f.trigger_commits_per_s / raw;
  std::printf("trigger-build (3 runs) through actors:   %10.0f builds/s = %.0f commits/s  ratio %.2f\n",
              f.triggers_per_s, f.trigger_commits_per_s, ratio);
  std::printf("complete-run (start + pass) through actors: %7.0f runs/s\n", f.completes_per_s);
  std::printf("live run actors %zu: %.0f heap bytes each; %.0f bytes each left after "
              "passivation (RSS %.0f MB busy, %.0f MB idle)\n",
              f.live_actors, f.bytes_per_actor, f.heap_left_after_passivation, f.rss_live_mb,
              f.rss_passivated_mb);

  auto t0 = clock::now();
  auto events = generate_history(dir / "history", history);
  std::printf("history: %u builds, %zu events written in %.1f s\n", history, events,
              seconds_since(t0));
  auto scan = raw_scan_s(dir / "history");
  // The first start folds the whole log and saves the projections when it
  // stops; the second starts from them.
  auto cold = measure_startup(dir / "history");
  auto warm = measure_startup(dir / "history");
  std::printf("raw rocksdb scan of the history:          %8.2f s\n", scan);
  std::printf("core start-up, folding the whole log:     %8.2f s  ratio %.2f  RSS %.0f MB\n",
              cold.seconds, scan / cold.seconds, cold.rss_mb);
  std::printf("core start-up from its snapshot:          %8.2f s  ratio %.2f  RSS %.0f MB\n",
              warm.seconds, scan / warm.seconds, warm.rss_mb);

  if (json)
    std::printf(
      "{\"bench\":\"core\",\"builds\":%llu,\"clients\":%llu,\"raw_append_per_s\":%.0f,"
      "\"trigger_builds_per_s\":%.0f,\"trigger_commits_per_s\":%.0f,"
      "\"trigger_vs_append_ratio\":%.3f,\"complete_runs_per_s\":%.0f,"
      "\"live_actors\":%zu,\"bytes_per_live_actor\":%.0f,\"rss_live_mb\":%.1f,"
      "\"rss_passivated_mb\":%.1f,\"bytes_left_per_passivated_actor\":%.0f,"
      "\"history_builds\":%u,\"history_events\":%zu,"
      "\"raw_scan_s\":%.3f,\"restart_1m_s\":%.3f,\"restart_vs_scan_ratio\":%.3f,"
      "\"rss_100k_builds_mb\":%.1f,\"restart_1m_no_snapshot_s\":%.3f,"
      "\"restart_no_snapshot_vs_scan_ratio\":%.3f,\"rss_100k_builds_no_snapshot_mb\":%.1f}\n",
      (unsigned long long)builds, (unsigned long long)clients, raw, f.triggers_per_s,
      f.trigger_commits_per_s, ratio, f.completes_per_s, f.live_actors, f.bytes_per_actor,
      f.rss_live_mb, f.rss_passivated_mb, f.heap_left_after_passivation, history, events, scan, warm.seconds,
      scan / warm.seconds, warm.rss_mb, cold.seconds, scan / cold.seconds, cold.rss_mb);
  return 0;
}

} // namespace kiln::cli
