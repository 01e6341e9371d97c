// `kiln bench cluster [--appends N] [--appenders K] [--rounds R] [--runs M]
// [--clients C] [--cluster-script PATH] [--json]`, two figures in one run:
//
// The cluster's log against plain JetStream, on a nats-server of its own
// (started on loopback with JetStream; a server a kiln cluster uses
// already has the log's subjects):
//   kiln     K threads append N commits in all through jetstream_event_log,
//            each to its own aggregate (publish with the expected subject
//            sequence, wait until this core's RocksDB copy holds it)
//   plain    K threads publish N messages of the same size with js_PublishMsg
//            and wait for each ack (a stream of their own, same storage)
//   checked  the same, each naming its subject's last sequence, while an
//            ordered consumer follows the stream: the server's own cost of
//            what kiln's design asks of it (checked_js_append_ratio)
// Rounds alternate which goes first; js_append_ratio is the median of the
// rounds' kiln / plain append rates.
//
// M trivial runs through `kiln up` (4 local workers) and through
// deploy/local-cluster (3 nats-servers, 2 cores, 3 gateways behind
// HAProxy, 2 workers of 2 runs each given the gateways' URLs), C clients
// (through HAProxy) each triggering a build and
// following it to its end: runs/s and trigger->finish p50/p99 of each;
// cluster_vs_single_ratio is the cluster's runs/s over the single node's.
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/bench_support.hpp"
#include "cli/benches.hpp"
#include "cli/self_path.hpp"
#include "cli/subprocess.hpp"
#include "events/codec.hpp"
#include "storage/jetstream_event_log.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

namespace kiln::cli {

namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

// A commit like a run's: one RunCompleted with a short message.
storage::append_request bench_commit(const std::string& stream, std::uint64_t expected) {
  storage::append_request r;
  r.stream = {stream};
  r.expected = {expected};
  r.meta = {1'700'000'000'000'000'000, "bench", "", ""};
  r.events.push_back(run_completed{status::passed, 0, "bench commit"});
  return r;
}

// nats-server with JetStream on a free loopback port, its store under `dir`.
struct nats_process {
  std::unique_ptr<subprocess> proc;
  std::string url;
  explicit nats_process(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    proc = std::make_unique<subprocess>(
      std::vector<std::string>{"/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", "-1", "-js", "-sd",
                               (dir / "js").string(), "--ports_file_dir", dir.string()},
      dir / "nats.log", true);
    auto ports = dir / ("nats-server_" + std::to_string(proc->pid()) + ".ports");
    std::smatch m;
    for (int i = 0; i < 200; ++i) {
      std::ifstream in{ports};
      std::string text{std::istreambuf_iterator<char>{in}, {}};
      if (std::regex_search(text, m, std::regex{R"((nats://[0-9.]+:\d+))"})) {
        url = m[1];
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    check(false, "nats-server did not start; see " + (dir / "nats.log").string());
  }
};

// Plain acknowledged JetStream publishes: K threads, `total` in all. With
// `checked`, each also names the subject's last sequence (as kiln must, so
// that two cores cannot both win) while an ordered consumer follows the
// stream (as each core's copy does): what the server itself spends on the
// two, without kiln.
double plain_rate(const std::string& url, std::size_t payload, std::size_t total, unsigned threads,
                  bool checked, std::uint64_t round) {
  natsConnection* nc = nullptr;
  check(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK, "cannot connect to " + url);
  jsCtx* js = nullptr;
  check(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK, "no JetStream at " + url);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {"bench.plain.>"};
  cfg.Name = "BENCH_PLAIN";
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  js_AddStream(nullptr, js, &cfg, nullptr, nullptr);  // exists after the first round: fine
  natsSubscription* follower = nullptr;
  if (checked) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "BENCH_PLAIN";
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverNew;
    auto on_msg = [](natsConnection*, natsSubscription*, natsMsg* m, void*) { natsMsg_Destroy(m); };
    check(js_Subscribe(&follower, js, "bench.plain.>", on_msg, nullptr, nullptr, &so, nullptr) == NATS_OK,
          "cannot follow the plain stream");
  }
  std::string data(payload, 'x');
  std::atomic<bool> failed{false};
  auto t0 = clock_type::now();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto subject = "bench.plain." + std::to_string(round) + (checked ? ".checked." : ".") + std::to_string(t);
      std::uint64_t last = 0;
      for (std::size_t i = t; i < total; i += threads) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        if (checked && last > 0)
          po.ExpectLastSubjectSeq = last;
        else if (checked)
          po.ExpectNoMessage = true;
        jsPubAck* ack = nullptr;
        if (js_Publish(&ack, js, subject.c_str(), data.data(), static_cast<int>(data.size()), &po,
                       nullptr) != NATS_OK)
          failed = true;
        else
          last = ack->Sequence;
        jsPubAck_Destroy(ack);
      }
    });
  for (auto& t : pool)
    t.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (follower)
    natsSubscription_Destroy(follower);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  check(!failed, "a plain JetStream publish failed");
  return static_cast<double>(total) / seconds;
}

// The same through the cluster's log (one copy for every round; each
// round appends to aggregates of its own).
double kiln_rate(storage::jetstream_event_log& log, std::uint64_t round, std::size_t total,
                 unsigned threads) {
  std::atomic<bool> failed{false};
  auto t0 = clock_type::now();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto aggregate = "run/bench/" + std::to_string(round) + "/" + std::to_string(t);
      std::uint64_t version = 0;
      for (std::size_t i = t; i < total; i += threads)
        if (!log.append(bench_commit(aggregate, version++)))
          failed = true;
    });
  for (auto& t : pool)
    t.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  check(!failed, "an append to the cluster's log failed");
  return static_cast<double>(total) / seconds;
}

// deploy/local-cluster, started with this kiln binary; stopped when it goes.
struct local_cluster {
  std::filesystem::path script, dir;
  std::string base, admin;

  local_cluster(std::filesystem::path script_path, std::filesystem::path d)
      : script(std::move(script_path)), dir(std::move(d)) {
    auto [status, out] = cluster_sh("start");
    auto at = out.rfind("KILN_URL=");
    if (status != 0 || at == std::string::npos) {
      // The bench's directory goes with it: what went wrong is told here.
      std::ifstream err{dir.parent_path() / "cluster-sh.log"};
      std::string said{std::istreambuf_iterator<char>{err}, {}};
      auto logs = run_capture({"/bin/sh", "-c", "tail -n 5 " + (dir / "logs").string() + "/*.log"}).second;
      cluster_sh("stop");
      check(false, "deploy/local-cluster did not start: " + out + said + "\n" + logs);
    }
    base = out.substr(at + 9);
    base = base.substr(0, base.find_first_of("\r\n"));
    std::ifstream{dir / "admin.token"} >> admin;
  }
  ~local_cluster() { cluster_sh("stop"); }

  std::pair<int, std::string> cluster_sh(const std::string& command) {
    return run_capture({"/usr/bin/env", "KILN=" + self_path().string(), "KILN_EXECUTOR=host",
                        "KILN_WORKER_CONCURRENCY=2", "bash", script.string(), command, dir.string()},
                       dir.parent_path() / "cluster-sh.log");
  }
};

void print_runs(const char* what, const run_figures& f) {
  std::printf("  %-8s %u runs in %6.2f s: %6.1f runs/s; trigger->finish p50 %4.0f ms p99 %5.0f ms%s\n",
              what, f.runs, f.total_s, f.runs_per_s, f.finish_p50, f.finish_p99,
              f.failed ? "  (SOME RUNS FAILED)" : "");
  std::fflush(stdout);
}

} // namespace

int bench_cluster(const args& a) {
  a.allow_only({"appends", "appenders", "rounds", "runs", "clients", "cluster-script", "json", "dir"});
  auto runs = static_cast<unsigned>(a.get_u64("runs", 1000));
  auto clients = static_cast<unsigned>(std::max<std::uint64_t>(1, a.get_u64("clients", 4)));
  std::filesystem::path script = a.get_or("cluster-script", KILN_SOURCE_DIR "/deploy/local-cluster/cluster.sh");
  if (runs > 0 && !std::filesystem::exists(script))
    throw usage_error("no " + script.string() + " (--cluster-script PATH: deploy/local-cluster/cluster.sh)");
  auto total = a.get_u64("appends", 2000);
  auto threads = static_cast<unsigned>(std::max<std::uint64_t>(1, a.get_u64("appenders", 8)));
  auto rounds = std::max<std::uint64_t>(1, a.get_u64("rounds", 3));
  bench_dir dir{a, "cluster"};
  auto root = std::filesystem::absolute(dir.path());
  nats_process nats{root / "nats"};
  auto url = nats.url;
  auto payload = codec::encode_commit(
    commit{{"run/bench/0/0"}, {1}, bench_commit("run/bench/0/0", 0).meta,
           bench_commit("run/bench/0/0", 0).events}).size();
  std::printf("bench cluster: %llu appends x %llu rounds, %u appenders, %zu-byte commits, %s\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(rounds),
              threads, payload, url.c_str());
  std::fflush(stdout);
  auto local = storage::rocksdb_event_log::open({.dir = root / "copy", .sync = false});
  check(bool(local), local ? "" : local.error().message);
  auto log = storage::jetstream_event_log::open(
    **local, {.servers = {url}, .name = "kiln-bench", .publishers = threads});
  check(bool(log), log ? "" : log.error().message);
  std::vector<double> plain, checked, kiln, ratios, checked_ratios;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    double p = 0, c = 0, k = 0;
    if (r % 2 == 0) {
      p = plain_rate(url, payload, total, threads, false, r);
      c = plain_rate(url, payload, total, threads, true, r);
      k = kiln_rate(**log, r, total, threads);
    } else {
      k = kiln_rate(**log, r, total, threads);
      c = plain_rate(url, payload, total, threads, true, r);
      p = plain_rate(url, payload, total, threads, false, r);
    }
    plain.push_back(p);
    checked.push_back(c);
    kiln.push_back(k);
    ratios.push_back(k / p);
    checked_ratios.push_back(c / p);
  }
  json out{{"appends", total},
           {"appenders", threads},
           {"commit_bytes", payload},
           {"plain_js_appends_per_s", percentile(plain, 0.5)},
           {"checked_js_appends_per_s", percentile(checked, 0.5)},
           {"kiln_js_appends_per_s", percentile(kiln, 0.5)},
           {"js_append_ratio", percentile(ratios, 0.5)},
           {"checked_js_append_ratio", percentile(checked_ratios, 0.5)}};
  std::printf("  appends  kiln %8.0f/s   plain JetStream %8.0f/s   ratio %.2f\n",
              out["kiln_js_appends_per_s"].get<double>(), out["plain_js_appends_per_s"].get<double>(),
              out["js_append_ratio"].get<double>());
  std::printf("           plain JetStream with kiln's sequence check and a follower %8.0f/s   ratio %.2f\n",
              out["checked_js_appends_per_s"].get<double>(), out["checked_js_append_ratio"].get<double>());
  unsigned failed = 0;
  if (runs > 0) {
    std::printf("bench cluster: %u runs of `true`, %u clients, through kiln up and through "
                "deploy/local-cluster\n", runs, clients);
    std::fflush(stdout);
    run_figures single, cluster;
    {
      kiln_server kiln{root / "single", {"--workers", "4", "--executor", "host"}};
      single = drive_runs(kiln.base, kiln.admin, "trivial", 4, runs, clients);
    }
    print_runs("single", single);
    {
      local_cluster lc{script, root / "local-cluster"};
      cluster = drive_runs(lc.base, lc.admin, "trivial", 2, runs, clients);
    }
    print_runs("cluster", cluster);
    failed = single.failed + cluster.failed;
    for (auto [name, f] : {std::pair{"single", &single}, std::pair{"cluster", &cluster}}) {
      auto p = std::string{name} + "_";
      out[p + "runs_per_s"] = f->runs_per_s;
      out[p + "finish_p50_ms"] = f->finish_p50;
      out[p + "finish_p99_ms"] = f->finish_p99;
    }
    out["runs"] = runs;
    out["failed"] = failed;
    out["cluster_vs_single_ratio"] = cluster.runs_per_s / single.runs_per_s;
    std::printf("  cluster vs single node: %.2f of its runs/s\n", out["cluster_vs_single_ratio"].get<double>());
  }
  if (a.has("json"))
    std::printf("%s\n", out.dump().c_str());
  if (failed) {
    std::fprintf(stderr, "kiln bench cluster: %u runs failed or could not be triggered\n", failed);
    return 1;
  }
  return 0;
}

} // namespace kiln::cli
