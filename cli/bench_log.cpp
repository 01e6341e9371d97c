// `kiln bench log [--json]`: kiln's event log against raw RocksDB, measured in
// one run in one directory (the same disk), with records of the same size.
//   raw_sync1     one synced Put per value, 1 thread
//   raw_batch64   synced WriteBatches of 64 values, 1 thread
//   append1       kiln appends (encode, version check, chain, synced group
//                 commit) from 1 appender
//   append64      the same from 64 concurrent appenders
//   raw_iter      iterating kiln's records column family with RocksDB alone
//   read_decode   kiln's read_all: verify + decode every commit
#include "cli/args.hpp"
#include "cli/benches.hpp"
#include "cli/bench_dir.hpp"
#include "events/codec.hpp"
#include "storage/hash_chain.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>
#include <unistd.h>

namespace kiln::cli {

namespace {

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point t0) {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

std::string be64(std::uint64_t v) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i)
    k[i] = static_cast<char>(v >> (56 - 8 * i));
  return k;
}

// A realistic small event: a run's completion with a 200-byte message. Only
// one letter varies, so the benchmark measures the log, not a random source.
storage::append_request sample_append(const std::string& stream, std::uint64_t expected,
                                      std::mt19937_64& rng) {
  static const std::string base_message = [] {
    std::mt19937_64 r{7};
    std::string m(200, ' ');
    for (auto& c : m)
      c = static_cast<char>('a' + r() % 26);
    return m;
  }();
  auto nonce = rng();
  auto message = base_message;
  message[expected % message.size()] = static_cast<char>('a' + nonce % 26);
  storage::append_request r;
  r.stream = {stream};
  r.expected = {expected};
  // Every command carries an id (as real ones do); it must be unique.
  r.meta = {1'700'000'000'000'000'000, "bench", stream + "#" + std::to_string(expected + 1), ""};
  r.events.push_back(run_completed{status::failed, 1, std::move(message)});
  return r;
}

std::size_t record_size(std::mt19937_64& rng) {
  auto r = sample_append("bench/t00", 0, rng);
  commit c{r.stream, {1}, r.meta, r.events};
  auto bytes = codec::encode_commit(c);
  return codec::encode_record(global_seq{1}, storage::genesis_hash,
                              storage::chain_hash(storage::genesis_hash, global_seq{1}, bytes),
                              bytes).size();
}

std::unique_ptr<rocksdb::DB> open_raw(const std::filesystem::path& dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.IncreaseParallelism(2);
  o.compression = rocksdb::kNoCompression;  // as kiln's records
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(o, dir.string(), &db);
  if (!s.ok())
    throw std::runtime_error("raw rocksdb open: " + s.ToString());
  return std::unique_ptr<rocksdb::DB>{db};
}

std::string random_value(std::size_t n, std::mt19937_64& rng) {
  std::string v(n, ' ');
  for (auto& c : v)
    c = static_cast<char>(rng());
  return v;
}

double raw_sync1(const std::filesystem::path& dir, std::size_t n, std::size_t size,
                 std::mt19937_64& rng) {
  auto db = open_raw(dir);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto value = random_value(size, rng);
  auto t0 = clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    value[i % size] ^= 1;  // no two values alike
    auto s = db->Put(wo, be64(i + 1), value);
    if (!s.ok())
      throw std::runtime_error("raw put: " + s.ToString());
  }
  return n / seconds_since(t0);
}

double raw_batch(const std::filesystem::path& dir, std::size_t batches, std::size_t per_batch,
                 std::size_t size, std::mt19937_64& rng) {
  auto db = open_raw(dir);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto value = random_value(size, rng);
  std::uint64_t key = 0;
  auto t0 = clock::now();
  for (std::size_t b = 0; b < batches; ++b) {
    rocksdb::WriteBatch wb;
    for (std::size_t i = 0; i < per_batch; ++i) {
      value[key % size] ^= 1;
      wb.Put(be64(++key), value);
    }
    auto s = db->Write(wo, &wb);
    if (!s.ok())
      throw std::runtime_error("raw batch: " + s.ToString());
  }
  return (batches * per_batch) / seconds_since(t0);
}

void must(const result<storage::append_receipt>& r) {
  if (!r)
    throw std::runtime_error("append: " + r.error().message);
}

double kiln_append(storage::event_log& log, std::size_t appenders, std::size_t per_appender,
                   const std::string& prefix) {
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  std::atomic<std::size_t> ready{0};
  for (std::size_t t = 0; t < appenders; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng{t * 7919 + 1};
      char name[64];
      std::snprintf(name, sizeof name, "%s%03zu", prefix.c_str(), t);
      ++ready;
      while (!go)
        std::this_thread::yield();
      for (std::size_t i = 0; i < per_appender; ++i)
        must(log.append(sample_append(name, i, rng)));
    });
  while (ready < appenders)
    std::this_thread::yield();
  auto t0 = clock::now();
  go = true;
  for (auto& t : threads)
    t.join();
  return (appenders * per_appender) / seconds_since(t0);
}

// `appenders` logical appenders served by `pool` threads, the way actors on
// CAF's scheduler append: each keeps one append in flight; its completion
// posts the appender back to the pool, which encodes and sends its next one.
double kiln_append_pooled(storage::event_log& log, std::size_t appenders,
                          std::size_t per_appender, std::size_t pool, const std::string& prefix) {
  struct appender {
    std::string stream;
    std::uint64_t done = 0;
    std::mt19937_64 rng;
  };
  std::vector<appender> as(appenders);
  for (std::size_t i = 0; i < appenders; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%s%03zu", prefix.c_str(), i);
    as[i].stream = name;
    as[i].rng.seed(i * 104729 + 3);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::size_t> ready;
  std::size_t finished = 0;
  std::string failure;
  // Like a scheduler's run queue: wake a worker only when work appears, and
  // let each wake drain everything ready.
  auto post = [&](std::size_t id) {
    bool was_empty;
    {
      std::lock_guard lock{mu};
      was_empty = ready.empty();
      ready.push_back(id);
    }
    if (was_empty)
      cv.notify_one();
  };
  auto t0 = clock::now();
  for (std::size_t i = 0; i < appenders; ++i)
    ready.push_back(i);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < pool; ++t)
    threads.emplace_back([&] {
      std::deque<std::size_t> mine;
      for (;;) {
        {
          std::unique_lock lock{mu};
          cv.wait(lock, [&] { return !ready.empty() || finished == appenders; });
          if (ready.empty())
            return;
          // Take half of what is ready (at least one): the other worker gets the rest.
          auto take = std::max<std::size_t>(1, (ready.size() + 1) / 2);
          for (std::size_t i = 0; i < take; ++i) {
            mine.push_back(ready.front());
            ready.pop_front();
          }
          if (!ready.empty())
            cv.notify_one();
        }
        for (; !mine.empty(); mine.pop_front()) {
          auto id = mine.front();
          auto& a = as[id];
          if (a.done == per_appender) {
            std::lock_guard lock{mu};
            if (++finished == appenders)
              cv.notify_all();
            continue;
          }
          log.append_async(sample_append(a.stream, a.done, a.rng),
                           [&, id](result<storage::append_receipt> r) {
                             if (!r) {
                               std::lock_guard lock{mu};
                               failure = r.error().message;
                             }
                             ++as[id].done;
                             post(id);
                           });
        }
      }
    });
  for (auto& t : threads)
    t.join();
  if (!failure.empty())
    throw std::runtime_error("append: " + failure);
  return (appenders * per_appender) / seconds_since(t0);
}

// Records per second, iterating kiln's records column family with RocksDB alone.
double raw_iterate(const std::filesystem::path& dir, std::size_t& count) {
  std::vector<std::string> names;
  rocksdb::Options o;
  auto s = rocksdb::DB::ListColumnFamilies(o, dir.string(), &names);
  if (!s.ok())
    throw std::runtime_error("list column families: " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names)
    cfs.push_back({n, rocksdb::ColumnFamilyOptions{}});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(o, dir.string(), cfs, &handles, &raw);
  if (!s.ok())
    throw std::runtime_error("raw open: " + s.ToString());
  std::unique_ptr<rocksdb::DB> db{raw};
  rocksdb::ColumnFamilyHandle* records = nullptr;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == "records")
      records = handles[i];
  std::size_t bytes = 0;
  count = 0;
  auto t0 = clock::now();
  {
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{}, records)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      bytes += it->key().size() + it->value().size();
      ++count;
    }
  }
  auto rate = count / seconds_since(t0);
  for (auto h : handles)
    db->DestroyColumnFamilyHandle(h);
  db->Close();
  if (bytes == 0)
    throw std::runtime_error("nothing to iterate");
  return rate;
}

double kiln_read_all(const std::filesystem::path& dir, std::size_t& count) {
  auto log = storage::rocksdb_event_log::open({.dir = dir});
  if (!log)
    throw std::runtime_error("open: " + log.error().message);
  count = 0;
  std::size_t events = 0;
  global_seq after{0};
  auto t0 = clock::now();
  for (;;) {
    auto page = (*log)->read_all(after, 1024);
    if (!page)
      throw std::runtime_error("read_all: " + page.error().message);
    if (page->empty())
      break;
    for (auto& c : *page)
      events += c.body.events.size();
    count += page->size();
    after = page->back().seq;
  }
  auto rate = count / seconds_since(t0);
  if (events < count)
    throw std::runtime_error("decoded fewer events than commits");
  return rate;
}

} // namespace

int bench_log(const args& a) {
  a.allow_only({"json", "dir", "single", "batches", "per-appender"});
  bool json = a.has("json");
  bench_dir scratch{a, "log"};
  auto& dir = scratch.path();
  auto single = a.get_u64("single", 1500);
  auto batches = a.get_u64("batches", 400);
  auto per_appender = a.get_u64("per-appender", 500);

  std::mt19937_64 rng{42};
  auto size = record_size(rng);
  std::printf("bench log: dir=%s record_bytes=%zu (raw values are the same size)\n",
              std::filesystem::absolute(dir).c_str(), size);

  auto raw1 = raw_sync1(dir / "raw1", single, size, rng);
  std::printf("raw rocksdb, 1 synced put per value:        %10.0f values/s\n", raw1);
  auto raw64 = raw_batch(dir / "raw64", batches, 64, size, rng);
  std::printf("raw rocksdb, synced batches of 64:          %10.0f values/s\n", raw64);

  double append1 = 0, append64 = 0, append64_threads = 0;
  {
    auto log = storage::rocksdb_event_log::open({.dir = dir / "kiln"});
    if (!log)
      throw std::runtime_error("open: " + log.error().message);
    append1 = kiln_append(**log, 1, single, "bench/single-");
    std::printf("kiln append, 1 appender:                    %10.0f commits/s  ratio %.2f\n",
                append1, append1 / raw1);
    auto s0 = (*log)->stats();
    append64 = kiln_append_pooled(**log, 64, per_appender, 2, "bench/p");
    auto s1 = (*log)->stats();
    std::printf("kiln append, 64 appenders on 2 threads:     %10.0f commits/s  ratio %.2f"
                "  (%.1f commits per sync)\n",
                append64, append64 / raw64,
                double(s1.commits - s0.commits) / double(s1.syncs - s0.syncs));
    append64_threads = kiln_append(**log, 64, per_appender, "bench/t");
    auto s2 = (*log)->stats();
    std::printf("kiln append, 64 blocking threads:           %10.0f commits/s  ratio %.2f"
                "  (%.1f commits per sync)\n",
                append64_threads, append64_threads / raw64,
                double(s2.commits - s1.commits) / double(s2.syncs - s1.syncs));
  }

  // Alternate the two readers a few times and keep each one's best: the page
  // cache is warm for both, and noise hits both alike.
  double raw_iter = 0, read_decode = 0;
  std::size_t raw_count = 0, kiln_count = 0;
  for (int round = 0; round < 5; ++round) {
    raw_iter = std::max(raw_iter, raw_iterate(dir / "kiln", raw_count));
    read_decode = std::max(read_decode, kiln_read_all(dir / "kiln", kiln_count));
  }
  if (raw_count != kiln_count)
    throw std::runtime_error("raw and kiln readers saw different record counts");
  std::printf("raw rocksdb iteration (%zu records):     %10.0f records/s\n", raw_count, raw_iter);
  std::printf("kiln read_all + verify + decode:            %10.0f commits/s  ratio %.2f\n",
              read_decode, read_decode / raw_iter);

  if (json)
    std::printf(
      "{\"bench\":\"log\",\"record_bytes\":%zu,\"raw_sync1_per_s\":%.0f,"
      "\"raw_batch64_values_per_s\":%.0f,\"append1_per_s\":%.0f,\"append64_per_s\":%.0f,"
      "\"raw_iter_per_s\":%.0f,\"read_decode_per_s\":%.0f,\"append1_ratio\":%.3f,"
      "\"append64_ratio\":%.3f,\"append64_threads_per_s\":%.0f,"
      "\"append64_threads_ratio\":%.3f,\"read_ratio\":%.3f}\n",
      size, raw1, raw64, append1, append64, raw_iter, read_decode, append1 / raw1,
      append64 / raw64, append64_threads, append64_threads / raw64, read_decode / raw_iter);
  return 0;
}

} // namespace kiln::cli
