// `kiln bench cluster [--appends N] [--appenders K] [--rounds R] [--json]`:
// the cluster's log against plain JetStream, in one run, on a nats-server of
// its own (started on loopback with JetStream; a server a kiln cluster uses
// already has the log's subjects):
//   kiln     K threads append N commits in all through jetstream_event_log,
//            each to its own aggregate (publish with the expected subject
//            sequence, wait until this core's RocksDB copy holds it)
//   plain    K threads publish N messages of the same size with js_PublishMsg
//            and wait for each ack (a stream of their own, same storage)
// Rounds alternate which goes first; js_append_ratio is the median of the
// rounds' kiln / plain append rates. The other half of the issue's figure,
// 1,000 runs through a cluster against `kiln up`, needs deploy/local-cluster
// and is not measured yet: the bench says so.
#include "cli/args.hpp"
#include "cli/bench_dir.hpp"
#include "cli/bench_support.hpp"
#include "cli/benches.hpp"
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

// Plain acknowledged JetStream publishes: K threads, `total` in all.
double plain_rate(const std::string& url, std::size_t payload, std::size_t total, unsigned threads) {
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
  std::string data(payload, 'x');
  std::atomic<bool> failed{false};
  auto t0 = clock_type::now();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto subject = "bench.plain." + std::to_string(t);
      for (std::size_t i = t; i < total; i += threads) {
        jsPubAck* ack = nullptr;
        if (js_Publish(&ack, js, subject.c_str(), data.data(), static_cast<int>(data.size()),
                       nullptr, nullptr) != NATS_OK)
          failed = true;
        jsPubAck_Destroy(ack);
      }
    });
  for (auto& t : pool)
    t.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
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

} // namespace

int bench_cluster(const args& a) {
  a.allow_only({"appends", "appenders", "rounds", "json", "dir"});
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
  std::vector<double> plain, kiln, ratios;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    double p = 0, k = 0;
    if (r % 2 == 0) {
      p = plain_rate(url, payload, total, threads);
      k = kiln_rate(**log, r, total, threads);
    } else {
      k = kiln_rate(**log, r, total, threads);
      p = plain_rate(url, payload, total, threads);
    }
    plain.push_back(p);
    kiln.push_back(k);
    ratios.push_back(k / p);
  }
  json out{{"appends", total},
           {"appenders", threads},
           {"commit_bytes", payload},
           {"plain_js_appends_per_s", percentile(plain, 50)},
           {"kiln_js_appends_per_s", percentile(kiln, 50)},
           {"js_append_ratio", percentile(ratios, 50)}};
  std::printf("  appends  kiln %8.0f/s   plain JetStream %8.0f/s   ratio %.2f\n",
              out["kiln_js_appends_per_s"].get<double>(), out["plain_js_appends_per_s"].get<double>(),
              out["js_append_ratio"].get<double>());
  std::printf("  cluster vs single node: not measured yet (it needs deploy/local-cluster)\n");
  if (a.has("json"))
    std::printf("%s\n", out.dump().c_str());
  return 0;
}

} // namespace kiln::cli
