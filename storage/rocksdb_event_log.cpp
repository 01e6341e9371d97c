#include "storage/rocksdb_event_log.hpp"

#include "events/codec.hpp"
#include "storage/hash_chain.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace kiln::storage {

namespace {

// Key layout (docs/architecture.md):
//   records   : be64(seq)                         -> Record (schema/kiln.fbs)
//   streams   : stream '\0' be64(first_version)   -> be64(seq) be64(last_version)
//   snapshots : stream                            -> be64(version) state bytes
//   default   : "format"                          -> "kiln-log-1"
constexpr const char* cf_records = "records";
constexpr const char* cf_streams = "streams";
constexpr const char* cf_snapshots = "snapshots";
constexpr const char* cf_console = "console";
constexpr const char* format_key = "format";
constexpr const char* format_value = "kiln-log-1";
// A copy of the cluster's log: the stream sequence copied up to, and that of
// the last commit it took (default column family, written with the commits).
constexpr const char* copy_position_key = "copy-position";
constexpr const char* copy_taken_key = "copy-taken";

// Above this many cached stream versions the cache starts over: a miss costs
// one index seek, and memory stays bounded however many streams exist.
constexpr std::size_t version_cache_limit = 100'000;

void put_be64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::string seq_key(std::uint64_t seq) {
  std::string k;
  put_be64(k, seq);
  return k;
}

std::string stream_key(std::string_view stream, std::uint64_t version) {
  std::string k;
  k.reserve(stream.size() + 9);
  k.append(stream);
  k.push_back('\0');
  put_be64(k, version);
  return k;
}

std::string stream_prefix(std::string_view stream) {
  std::string k{stream};
  k.push_back('\0');
  return k;
}

// A stream index key's stream part, '\0' included. RocksDB keeps an insert
// hint per prefix, so appending to a stream inserts next to its last entry
// instead of searching the memtable: a third off the cost of a batch.
class stream_prefix_transform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "kiln.stream_prefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    auto nul = static_cast<const char*>(std::memchr(key.data(), 0, key.size()));
    return {key.data(), static_cast<std::size_t>(nul - key.data()) + 1};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return std::memchr(key.data(), 0, key.size()) != nullptr;
  }
};

struct index_entry {
  std::uint64_t first_version = 0;
  std::uint64_t seq = 0;
  std::uint64_t last_version = 0;
};

error io_error(const rocksdb::Status& s, std::string_view what) {
  return make_error(s.IsCorruption() ? errc::corrupt : errc::io,
                    std::string{what} + ": " + s.ToString());
}

// Command ids of recent commits, so that a retried command returns its first
// receipt. Like JetStream's de-duplication window it covers a span of time
// (and a bounded count); commits carry their ids, so open() rebuilds it
// from the log's tail and it survives restarts.
class command_window {
 public:
  static constexpr std::int64_t span_ns = 10LL * 60 * 1'000'000'000;  // 10 minutes
  static constexpr std::size_t max_ids = 1'000'000;

  struct entry {
    std::string stream;
    std::uint64_t seq = 0;
    std::uint64_t last_version = 0;
  };

  const entry* find(const std::string& id) const {
    auto it = ids_.find(id);
    return it == ids_.end() ? nullptr : &it->second;
  }

  void add(const std::string& id, entry e, std::int64_t time_unix_ns) {
    if (!ids_.emplace(id, std::move(e)).second)
      return;
    order_.emplace_back(time_unix_ns, id);
    newest_ = std::max(newest_, time_unix_ns);
    while (!order_.empty()
           && (order_.size() > max_ids || order_.front().first < newest_ - span_ns)) {
      ids_.erase(order_.front().second);
      order_.pop_front();
    }
  }

 private:
  std::unordered_map<std::string, entry> ids_;
  std::deque<std::pair<std::int64_t, std::string>> order_;  // oldest first
  std::int64_t newest_ = INT64_MIN;
};

struct pending_append {
  std::string command_id;
  std::int64_t time_unix_ns = 0;
  std::string stream;
  std::uint64_t expected = 0;
  std::uint64_t event_count = 0;
  std::string commit_bytes;
  append_callback done;
  // A replicated commit (replicate): its sequence in the cluster's
  // stream; 0 for a local append. Not de-duplicated.
  std::uint64_t source_seq = 0;
};

// A subscription caught up with the log whose live commits the writer hands
// over itself (live_delivery::writer_thread). Under the log's commit_mu.
struct live_listener {
  commit_handler* on_commit = nullptr;
  std::uint64_t after = 0;  // the last commit it was handed
  bool listening = false;   // in the log's list
  bool ended = false;       // its handler returned false
};

} // namespace

struct rocksdb_event_log::impl {
  rocksdb_log_options opts;
  std::filesystem::path secondary_dir;  // read-only mode's private scratch dir
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* records = nullptr;
  rocksdb::ColumnFamilyHandle* streams = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* console = nullptr;
  std::mutex console_mu;  // one append at a time: check the end, then write
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  // Appenders -> writer.
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<pending_append> queue;
  bool stopping = false;
  // Appenders wake the writer at this queue length (see write_loop's linger).
  std::size_t wake_at = 1;
  std::thread writer;
  std::thread wal_flusher;  // an unsynced log's (wal_flush_loop)
  std::condition_variable wal_cv;  // under queue_mu: wakes it to stop

  // The writer's state: under write_mu (the writer thread's batches and
  // replicate() on the copy's thread).
  std::mutex write_mu;
  std::unordered_map<std::string, std::uint64_t> batch_versions;
  std::unordered_map<std::string, command_window::entry> batch_commands;
  std::atomic<std::int64_t> sync_cost_us{400};  // a write's running average
  command_window commands;  // written by the writer thread, read by find_command
  mutable std::mutex commands_mu;
  std::uint64_t next_seq = 1;
  digest last_hash{};
  std::atomic<std::uint64_t> copy_position{0}, copy_taken{0};
  // Each recent stream's last version, as written: the writer's check, and
  // last_version() without a seek. Its own lock: readers must not wait out
  // a synced write.
  std::mutex versions_mu;
  std::unordered_map<std::string, std::uint64_t> versions;

  // Writer -> readers and subscriptions.
  std::atomic<std::uint64_t> committed_seq{0};
  std::atomic<std::uint64_t> commits_written{0};
  std::atomic<std::uint64_t> syncs{0};
  std::mutex commit_mu;
  std::condition_variable commit_cv;
  std::atomic<bool> closed{false};
  std::vector<live_listener*> live;  // under commit_mu

  ~impl() {
    shutdown();
    for (auto h : handles)
      db->DestroyColumnFamilyHandle(h);
    handles.clear();
    if (db)
      db->Close();
    db.reset();
    if (!secondary_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(secondary_dir, ec);
    }
  }

  void shutdown() {
    {
      std::lock_guard lock{queue_mu};
      if (stopping)
        return;
      stopping = true;
    }
    queue_cv.notify_all();
    wal_cv.notify_all();
    if (writer.joinable())
      writer.join();
    if (wal_flusher.joinable())
      wal_flusher.join();
    {
      std::lock_guard lock{commit_mu};
      closed = true;
    }
    commit_cv.notify_all();
    if (db && !opts.read_only) {
      rocksdb::FlushOptions fo;
      auto s = db->Flush(fo, handles);
      if (!s.ok())
        spdlog::warn("event_log flush_on_close=failed status=\"{}\"", s.ToString());
    }
  }

  result<std::optional<index_entry>> last_index_entry(std::string_view stream) {
    auto prefix = stream_prefix(stream);
    auto upper = stream_key(stream, UINT64_MAX);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(ro, streams)};
    it->SeekForPrev(upper);
    if (!it->status().ok())
      return io_error(it->status(), "index seek");
    if (!it->Valid() || !it->key().starts_with(prefix))
      return std::optional<index_entry>{};
    auto k = it->key();
    auto v = it->value();
    if (k.size() != prefix.size() + 8 || v.size() != 16)
      return make_error(errc::corrupt, "bad stream index entry for " + std::string{stream});
    return std::optional<index_entry>{
      index_entry{get_be64(k.data() + prefix.size()), get_be64(v.data()), get_be64(v.data() + 8)}};
  }

  // The first receipt of a command id seen in this batch or the window, or
  // nothing when the id is new.
  std::optional<result<append_receipt>>
  seen_command(const pending_append& p,
               const std::unordered_map<std::string, command_window::entry>& batch_commands) {
    const command_window::entry* e = nullptr;
    if (auto it = batch_commands.find(p.command_id); it != batch_commands.end())
      e = &it->second;
    std::unique_lock lock{commands_mu};
    if (!e)
      e = commands.find(p.command_id);
    if (!e)
      return std::nullopt;
    if (e->stream != p.stream)
      return result<append_receipt>{make_error(
        errc::invalid_argument, "command id " + p.command_id + " was used on another stream")};
    return result<append_receipt>{
      append_receipt{global_seq{e->seq}, stream_version{e->last_version}, true}};
  }

  // Refills the command window from the log's tail: newest commits back to
  // the window's span (measured from the newest commit's time).
  status_result load_command_window() {
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{}, records)};
    struct found_id {
      std::string id;
      command_window::entry entry;
      std::int64_t time;
    };
    std::vector<found_id> found;
    std::int64_t newest = INT64_MIN;
    for (it->SeekToLast(); it->Valid() && found.size() < command_window::max_ids; it->Prev()) {
      auto c = decode(it->value());
      if (!c)
        return c.error();
      auto t = c->body.meta.time_unix_ns;
      newest = std::max(newest, t);
      if (t < newest - command_window::span_ns)
        break;
      if (!c->body.meta.command_id.empty())
        found.push_back({c->body.meta.command_id,
                         {c->body.stream.value, c->seq.value, c->body.last_version().value}, t});
    }
    if (!it->status().ok())
      return io_error(it->status(), "load command window");
    std::lock_guard lock{commands_mu};
    for (auto f = found.rbegin(); f != found.rend(); ++f)  // oldest first
      commands.add(f->id, f->entry, f->time);
    return ok;
  }

  std::optional<std::uint64_t> cached_version(const std::string& stream) {
    std::lock_guard lock{versions_mu};
    if (auto it = versions.find(stream); it != versions.end())
      return it->second;
    return std::nullopt;
  }

  result<std::uint64_t> current_version(const std::string& stream) {
    if (auto v = cached_version(stream))
      return *v;
    auto entry = last_index_entry(stream);
    if (!entry)
      return entry.error();
    std::uint64_t v = *entry ? (*entry)->last_version : 0;
    std::lock_guard lock{versions_mu};
    if (versions.size() >= version_cache_limit)
      versions.clear();
    versions.emplace(stream, v);
    return v;
  }

  // One WriteBatch for `batch`: versions checked (and command ids, for local
  // appends), the chain extended, then written; an outcome for each. The
  // writer thread and replicate() share the writer's state: under write_mu.
  // Callbacks are the caller's to run, after it lets go of write_mu.
  void write_batch(std::vector<pending_append>& batch,
                   std::vector<std::optional<result<append_receipt>>>& outcomes) {
    outcomes.assign(batch.size(), std::nullopt);
    batch_versions.clear();
    batch_commands.clear();
    rocksdb::WriteBatch wb;
    auto seq = next_seq;
    auto hash = last_hash;
    std::uint64_t batch_position = 0, batch_taken = 0;
    struct written_commit {
      std::size_t index;
      std::uint64_t seq;
      digest prev, hash;
    };
    std::vector<written_commit> written;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& p = batch[i];
      if (p.source_seq != 0)
        batch_position = std::max(batch_position, p.source_seq);
      if (!p.command_id.empty() && p.source_seq == 0) {
        if (auto first = seen_command(p, batch_commands)) {
          outcomes[i] = std::move(*first);
          continue;
        }
      }
      std::uint64_t current;
      if (auto it = batch_versions.find(p.stream); it != batch_versions.end()) {
        current = it->second;
      } else if (auto v = current_version(p.stream); v) {
        current = *v;
      } else {
        outcomes[i] = v.error();
        continue;
      }
      if (current != p.expected) {
        // A replicated commit whose version is taken lost a race the
        // stream let through: every copy leaves it out alike.
        outcomes[i] = make_error(errc::conflict, "stream " + p.stream + " is at version "
                                                   + std::to_string(current) + ", expected "
                                                   + std::to_string(p.expected));
        continue;
      }
      auto h = chain_hash(hash, global_seq{seq}, p.commit_bytes);
      wb.Put(records, seq_key(seq), codec::encode_record(global_seq{seq}, hash, h, p.commit_bytes));
      std::string index_value;
      auto last = p.expected + p.event_count;
      put_be64(index_value, seq);
      put_be64(index_value, last);
      wb.Put(streams, stream_key(p.stream, p.expected + 1), index_value);
      if (!p.command_id.empty() && !batch_commands.count(p.command_id))
        batch_commands[p.command_id] = {p.stream, seq, last};
      batch_versions[p.stream] = last;
      if (p.source_seq != 0)
        batch_taken = p.source_seq;
      outcomes[i] = append_receipt{global_seq{seq}, stream_version{last}};
      written.push_back({i, seq, hash, h});
      hash = h;
      ++seq;
    }
    if (batch_position != 0) {
      std::string v;
      put_be64(v, batch_position);
      wb.Put(copy_position_key, v);
      if (batch_taken != 0) {
        std::string t;
        put_be64(t, batch_taken);
        wb.Put(copy_taken_key, t);
      }
    }
    if (wb.Count() == 0)
      return;
    rocksdb::WriteOptions wo;
    wo.sync = opts.sync;
    auto t0 = std::chrono::steady_clock::now();
    auto s = db->Write(wo, &wb);
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    sync_cost_us = (sync_cost_us * 7 + took.count()) / 8;
    if (!s.ok()) {
      spdlog::error("event_log write=failed commits={} status=\"{}\"", seq - next_seq, s.ToString());
      for (auto& o : outcomes)
        if (o && *o)
          o = io_error(s, "synced write");
      // What we cached may now be ahead of the disk: forget it.
      std::lock_guard lock{versions_mu};
      versions.clear();
      return;
    }
    commits_written += seq - next_seq;
    syncs += 1;
    next_seq = seq;
    last_hash = hash;
    if (batch_position != 0)
      copy_position = batch_position;
    if (batch_taken != 0)
      copy_taken = batch_taken;
    {
      std::lock_guard lock{versions_mu};
      for (auto& [stream, v] : batch_versions)
        versions[stream] = v;
    }
    {
      std::lock_guard lock{commands_mu};
      for (auto& p : batch)
        if (auto it = batch_commands.find(p.command_id); it != batch_commands.end())
          commands.add(p.command_id, it->second, p.time_unix_ns);
    }
    {
      std::lock_guard lock{commit_mu};
      committed_seq.store(seq - 1);
      if (!live.empty())
        hand_to_live(batch, written);
    }
    commit_cv.notify_all();
  }

  // Under commit_mu, right after the commits became visible: every
  // listener has had all before them, so each gets them with no gap.
  template <class Written>
  void hand_to_live(const std::vector<pending_append>& batch, const Written& written) {
    for (auto& w : written) {
      auto body = codec::decode_commit(batch[w.index].commit_bytes);
      if (!body) {
        // Never expected (the bytes were just encoded or verified): the
        // listeners go back to reading, which reports it.
        spdlog::error("event_log live=undecodable seq={} error=\"{}\"", w.seq, body.error().message);
        for (auto* l : live)
          l->listening = false;
        live.clear();
        return;
      }
      logged_commit c{global_seq{w.seq}, w.prev, w.hash, std::move(*body)};
      for (auto* l : live) {
        l->after = w.seq;
        if (!(*l->on_commit)(c)) {
          l->ended = true;
          l->listening = false;
        }
      }
      std::erase_if(live, [](live_listener* l) { return !l->listening; });
      if (live.empty())
        return;
    }
  }

  // Group commit. A sync costs about the same for 1 commit or 100, so the
  // writer gathers every pending append into one synced WriteBatch. The
  // appenders of the last batch usually come straight back with their next
  // commit; the writer lingers for them (at most a quarter of a sync's cost)
  // so that they share one sync instead of straggling over two.
  void write_loop() {
    std::size_t last_batch = 1;
    std::vector<pending_append> batch;
    std::vector<std::optional<result<append_receipt>>> outcomes;
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock{queue_mu};
        queue_cv.wait(lock, [&] { return !queue.empty() || stopping; });
        if (queue.empty())
          return;
        // Lingering shares a sync; an unsynced log (a cluster core's copy)
        // has none to share and would only wait.
        if (opts.sync && queue.size() < last_batch && !stopping) {
          wake_at = last_batch;
          queue_cv.wait_for(lock, std::chrono::microseconds{sync_cost_us.load() / 4},
                            [&] { return queue.size() >= last_batch || stopping; });
          wake_at = 1;
        }
        while (!queue.empty() && batch.size() < opts.max_batch) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      last_batch = batch.size();
      {
        std::lock_guard lock{write_mu};
        write_batch(batch, outcomes);
      }
      for (std::size_t i = 0; i < batch.size(); ++i)
        batch[i].done(std::move(*outcomes[i]));
    }
  }

  // An unsynced log's WAL reaches its file here, every wal_flush_interval
  // when there were writes: what a reader beside the server (a secondary
  // instance) and a restart after a crash can see.
  void wal_flush_loop(rocksdb::SequenceNumber flushed) {
    std::unique_lock lock{queue_mu};
    while (!stopping) {
      wal_cv.wait_for(lock, opts.wal_flush_interval);
      auto latest = db->GetLatestSequenceNumber();
      if (latest == flushed)
        continue;
      lock.unlock();
      if (auto s = db->FlushWAL(false); !s.ok())
        spdlog::warn("event_log wal_flush=failed status=\"{}\"", s.ToString());
      flushed = latest;
      lock.lock();
    }
  }

  // Read-only mode: a secondary instance sees the primary's commits only
  // after catching up with its MANIFEST and WAL.
  status_result refresh() {
    if (!opts.read_only)
      return ok;
    auto s = db->TryCatchUpWithPrimary();
    if (!s.ok())
      return io_error(s, "catch up with primary");
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{}, records)};
    it->SeekToLast();
    if (it->Valid() && it->key().size() == 8) {
      std::lock_guard lock{commit_mu};
      committed_seq = get_be64(it->key().data());
    }
    return ok;
  }

  result<logged_commit> decode(const rocksdb::Slice& value) {
    auto c = codec::decode_logged_commit({value.data(), value.size()});
    if (!c)
      return make_error(errc::corrupt, c.error().message);
    return c;
  }

  result<std::vector<logged_commit>> read_all(global_seq after, std::size_t max) {
    std::vector<logged_commit> out;
    out.reserve(std::min<std::size_t>(max, 1024));
    // Bounded by what is durable: a reader never sees a commit before its
    // appender could be told it is safe.
    auto upper_key = seq_key(committed_seq.load() + 1);
    rocksdb::Slice upper{upper_key};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(ro, records)};
    for (it->Seek(seq_key(after.value + 1)); it->Valid() && out.size() < max; it->Next()) {
      auto c = decode(it->value());
      if (!c)
        return c.error();
      out.push_back(std::move(*c));
    }
    if (!it->status().ok())
      return io_error(it->status(), "read_all");
    return out;
  }
};

namespace {

class rocksdb_subscription final : public subscription {
 public:
  rocksdb_subscription(std::shared_ptr<rocksdb_event_log::impl> log, global_seq after,
                       commit_handler on_commit, error_handler on_error, live_delivery live)
    : log_(std::move(log)), after_(after), on_commit_(std::move(on_commit)),
      on_error_(std::move(on_error)), live_(live) {
    listener_.on_commit = &on_commit_;
    thread_ = std::thread([this] { run(); });
  }

  ~rocksdb_subscription() override {
    {
      // Under commit_mu: a writer handing this a commit has finished.
      std::lock_guard lock{log_->commit_mu};
      stop_ = true;
      if (listener_.listening)
        std::erase(log_->live, &listener_);
      listener_.listening = false;
    }
    log_->commit_cv.notify_all();
    thread_.join();
  }

 private:
  void run() {
    constexpr std::size_t page = 512;
    for (;;) {
      if (stop_)
        return;
      if (log_->opts.read_only)
        (void) log_->refresh();
      auto commits = log_->read_all(after_, page);
      if (!commits) {
        if (on_error_)
          on_error_(commits.error());
        return;
      }
      for (auto& c : *commits) {
        if (stop_ || !on_commit_(c))
          return;
        after_ = c.seq;
      }
      if (commits->size() == page)
        continue;
      std::unique_lock lock{log_->commit_mu};
      if (live_ == live_delivery::writer_thread && !log_->opts.read_only && !stop_ && !log_->closed
          && log_->committed_seq.load() == after_.value) {
        // Caught up: from here the writer hands this each commit.
        listener_.after = after_.value;
        listener_.listening = true;
        log_->live.push_back(&listener_);
        log_->commit_cv.wait(lock, [&] { return stop_ || log_->closed || !listener_.listening; });
        if (stop_ || listener_.ended)
          return;
        if (listener_.listening) {  // the log closed
          std::erase(log_->live, &listener_);
          listener_.listening = false;
          return;
        }
        after_ = global_seq{listener_.after};  // handed back: read on from there
        continue;
      }
      auto caught_up = [&] {
        return stop_ || log_->closed || log_->committed_seq.load() > after_.value;
      };
      if (log_->opts.read_only)
        // A secondary learns of new commits only by polling the primary.
        log_->commit_cv.wait_for(lock, std::chrono::milliseconds(100), caught_up);
      else
        log_->commit_cv.wait(lock, caught_up);
      if (log_->closed && !stop_ && log_->committed_seq.load() <= after_.value)
        return;
    }
  }

  std::shared_ptr<rocksdb_event_log::impl> log_;
  global_seq after_;
  commit_handler on_commit_;
  error_handler on_error_;
  live_delivery live_;
  live_listener listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace

result<std::unique_ptr<rocksdb_event_log>> rocksdb_event_log::open(const rocksdb_log_options& o) {
  auto p = std::make_shared<impl>();
  p->opts = o;
  std::error_code ec;
  if (!o.read_only) {
    // RocksDB does not create parent directories.
    std::filesystem::create_directories(o.dir, ec);
    if (ec)
      return make_error(errc::io, "cannot create " + o.dir.string() + ": " + ec.message());
  } else if (!std::filesystem::exists(o.dir / "CURRENT")) {
    return make_error(errc::io, "no event log at " + o.dir.string());
  }

  rocksdb::Options db_opts;
  db_opts.create_if_missing = !o.read_only;
  db_opts.create_missing_column_families = !o.read_only;
  db_opts.IncreaseParallelism(2);
  db_opts.max_open_files = -1;  // required by secondary instances; cheap here
  db_opts.keep_log_file_num = 5;
  // An unsynced log's WAL is written to its file by wal_flush_loop, not by
  // every write: a system call per copied commit was a tenth of an append's
  // cost in a cluster. A crash loses at most that interval's tail, which
  // the copy takes from the cluster's stream again.
  db_opts.manual_wal_flush = !o.sync && !o.read_only;

  rocksdb::ColumnFamilyOptions record_opts;
  // Records are small and hashed; uncompressed they read fastest, and a
  // flipped byte on disk stays where the auditor can name its commit.
  record_opts.compression = rocksdb::kNoCompression;
  rocksdb::ColumnFamilyOptions stream_opts;
  stream_opts.memtable_insert_with_hint_prefix_extractor =
    std::make_shared<stream_prefix_transform>();
  // Insert hints need a single memtable writer; appends have one anyway.
  db_opts.allow_concurrent_memtable_write = false;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
    {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions{}},
    {cf_records, record_opts},
    {cf_streams, stream_opts},
    {cf_snapshots, rocksdb::ColumnFamilyOptions{}},
    {cf_console, rocksdb::ColumnFamilyOptions{}},
  };

  // Open column families this version does not know too (a data dir written
  // by another kiln version): RocksDB refuses to open without all of them.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_opts, o.dir.string(), &existing).ok())
    for (auto& name : existing)
      if (std::none_of(cfs.begin(), cfs.end(), [&](auto& d) { return d.name == name; }))
        cfs.push_back({name, rocksdb::ColumnFamilyOptions{}});

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (o.read_only) {
    auto tmpl = (std::filesystem::temp_directory_path() / "kiln-secondary-XXXXXX").string();
    if (!mkdtemp(tmpl.data()))
      return make_error(errc::io, "cannot create a scratch directory for a read-only open");
    p->secondary_dir = tmpl;
    s = rocksdb::DB::OpenAsSecondary(db_opts, o.dir.string(), p->secondary_dir.string(), cfs,
                                     &p->handles, &raw);
  } else {
    s = rocksdb::DB::Open(db_opts, o.dir.string(), cfs, &p->handles, &raw);
  }
  if (!s.ok())
    return io_error(s, "open " + o.dir.string());
  p->db.reset(raw);
  p->records = p->handles[1];
  p->streams = p->handles[2];
  p->snapshots = p->handles[3];
  p->console = p->handles[4];

  std::string format;
  s = p->db->Get(rocksdb::ReadOptions{}, format_key, &format);
  if (s.IsNotFound() && !o.read_only) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = p->db->Put(wo, format_key, format_value);
    format = format_value;
  }
  if (!s.ok() && !s.IsNotFound())
    return io_error(s, "read format");
  if (!format.empty() && format != format_value)
    return make_error(errc::corrupt, "unknown log format '" + format + "' in " + o.dir.string());

  // The chain continues from the last stored record.
  std::unique_ptr<rocksdb::Iterator> it{p->db->NewIterator(rocksdb::ReadOptions{}, p->records)};
  it->SeekToLast();
  if (!it->status().ok())
    return io_error(it->status(), "find last record");
  if (it->Valid()) {
    auto last = p->decode(it->value());
    if (!last)
      return make_error(errc::corrupt, "the last record does not decode: " + last.error().message);
    p->next_seq = last->seq.value + 1;
    p->last_hash = last->hash;
  }
  it.reset();
  p->committed_seq = p->next_seq - 1;
  for (auto [key, into] : {std::pair{copy_position_key, &p->copy_position},
                           std::pair{copy_taken_key, &p->copy_taken}}) {
    std::string v;
    if (p->db->Get(rocksdb::ReadOptions{}, key, &v).ok() && v.size() == 8)
      into->store(get_be64(v.data()));
  }
  if (!o.read_only) {
    if (auto loaded = p->load_command_window(); !loaded)
      return loaded.error();
    p->writer = std::thread([raw_p = p.get()] { raw_p->write_loop(); });
    if (!o.sync)
      p->wal_flusher = std::thread([raw_p = p.get(), at_open = p->db->GetLatestSequenceNumber()] {
        raw_p->wal_flush_loop(at_open);
      });
  }
  spdlog::info("event_log opened dir={} mode={} last_seq={}", o.dir.string(),
               o.read_only ? "read_only" : "read_write", p->committed_seq.load());
  return std::unique_ptr<rocksdb_event_log>{new rocksdb_event_log(std::move(p))};
}

rocksdb_event_log::rocksdb_event_log(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

rocksdb_event_log::~rocksdb_event_log() { close(); }

void rocksdb_event_log::close() { impl_->shutdown(); }

void rocksdb_event_log::append_async(append_request req, append_callback done) {
  if (impl_->opts.read_only)
    return done(make_error(errc::read_only, "the log is open read-only"));
  if (req.events.empty() || req.stream.value.empty())
    return done(make_error(errc::invalid_argument, "an append needs a stream and events"));
  if (req.stream.value.find('\0') != std::string::npos)
    return done(make_error(errc::invalid_argument, "a stream name cannot hold a NUL byte"));
  // Encoding happens on the appender's thread, in parallel; the writer only
  // checks versions, chains and writes.
  commit c{std::move(req.stream), stream_version{req.expected.value + 1}, std::move(req.meta),
           std::move(req.events)};
  auto bytes = codec::encode_commit(c);
  pending_append p{c.meta.command_id, c.meta.time_unix_ns, std::move(c.stream.value),
                   req.expected.value,
                   c.events.size(), std::move(bytes), std::move(done)};
  {
    std::lock_guard lock{impl_->queue_mu};
    if (impl_->stopping) {
      auto cb = std::move(p.done);
      return cb(make_error(errc::closed, "the log is closing"));
    }
    impl_->queue.push_back(std::move(p));
    auto n = impl_->queue.size();
    if (n != 1 && n < impl_->wake_at)
      return;  // the writer is busy, or lingering for more: no need to wake it
  }
  impl_->queue_cv.notify_one();
}

result<append_receipt> rocksdb_event_log::replicate(std::uint64_t source_seq, std::string commit_bytes) {
  auto c = codec::decode_commit(commit_bytes);
  if (!c)
    return make_error(errc::corrupt, "replicated commit " + std::to_string(source_seq)
                                       + " does not decode: " + c.error().message);
  if (c->events.empty() || c->first_version.value == 0)
    return make_error(errc::invalid_argument,
                      "replicated commit " + std::to_string(source_seq) + " holds no events");
  std::vector<pending_append> one;
  one.push_back({c->meta.command_id, c->meta.time_unix_ns, std::move(c->stream.value),
                 c->first_version.value - 1, c->events.size(), std::move(commit_bytes), {},
                 source_seq});
  std::vector<std::optional<result<append_receipt>>> outcome;
  std::lock_guard lock{impl_->write_mu};
  if (impl_->closed || impl_->opts.read_only)
    return make_error(errc::closed, "the log is closing");
  impl_->write_batch(one, outcome);
  return std::move(*outcome.front());
}

result<std::vector<logged_commit>>
rocksdb_event_log::read_stream(const stream_id& stream, stream_version from, std::size_t max) {
  std::vector<logged_commit> out;
  auto prefix = stream_prefix(stream.value);
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(ro, impl_->streams)};
  // Start at the commit holding `from`: the last one whose first version <= from.
  it->SeekForPrev(stream_key(stream.value, std::max<std::uint64_t>(from.value, 1)));
  if (!it->Valid() || !it->key().starts_with(prefix))
    it->Seek(stream_key(stream.value, 0));
  for (; it->Valid() && it->key().starts_with(prefix) && out.size() < max; it->Next()) {
    auto v = it->value();
    if (v.size() != 16)
      return make_error(errc::corrupt, "bad stream index entry for " + stream.value);
    if (get_be64(v.data() + 8) < from.value)
      continue;
    if (get_be64(v.data()) > impl_->committed_seq.load())
      break;  // not yet durable
    std::string record;
    auto s = impl_->db->Get(ro, impl_->records, seq_key(get_be64(v.data())), &record);
    if (!s.ok())
      return io_error(s, "read record of " + stream.value);
    auto c = impl_->decode(record);
    if (!c)
      return c.error();
    out.push_back(std::move(*c));
  }
  if (!it->status().ok())
    return io_error(it->status(), "read_stream");
  return out;
}

result<std::vector<logged_commit>> rocksdb_event_log::read_all(global_seq after, std::size_t max) {
  return impl_->read_all(after, max);
}

result<stream_version> rocksdb_event_log::last_version(const stream_id& stream) {
  if (auto v = impl_->cached_version(stream.value))
    return stream_version{*v};
  auto e = impl_->last_index_entry(stream.value);
  if (!e)
    return e.error();
  return stream_version{*e ? (*e)->last_version : 0};
}

rocksdb_event_log::write_stats rocksdb_event_log::stats() const {
  return {impl_->commits_written.load(), impl_->syncs.load()};
}

std::optional<append_receipt> rocksdb_event_log::find_command(const std::string& id) {
  std::lock_guard lock{impl_->commands_mu};
  auto e = impl_->commands.find(id);
  if (!e)
    return std::nullopt;
  return append_receipt{global_seq{e->seq}, stream_version{e->last_version}, true};
}

global_seq rocksdb_event_log::last_seq() const { return {impl_->committed_seq.load()}; }
std::uint64_t rocksdb_event_log::copy_position() const { return impl_->copy_position.load(); }
std::uint64_t rocksdb_event_log::copy_taken() const { return impl_->copy_taken.load(); }

std::unique_ptr<subscription>
rocksdb_event_log::subscribe(global_seq after, commit_handler on_commit, error_handler on_error,
                             live_delivery live) {
  return std::make_unique<rocksdb_subscription>(impl_, after, std::move(on_commit),
                                                std::move(on_error), live);
}

status_result rocksdb_event_log::save_snapshot(const stream_id& stream, const snapshot& snap) {
  if (impl_->opts.read_only)
    return make_error(errc::read_only, "the log is open read-only");
  std::string value;
  value.reserve(8 + snap.bytes.size());
  put_be64(value, snap.version.value);
  value += snap.bytes;
  auto s = impl_->db->Put(rocksdb::WriteOptions{}, impl_->snapshots, stream.value, value);
  if (!s.ok())
    return io_error(s, "save snapshot");
  return ok;
}

result<std::optional<snapshot>> rocksdb_event_log::load_snapshot(const stream_id& stream) {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions{}, impl_->snapshots, stream.value, &value);
  if (s.IsNotFound())
    return std::optional<snapshot>{};
  if (!s.ok())
    return io_error(s, "load snapshot");
  if (value.size() < 8)
    return make_error(errc::corrupt, "snapshot of " + stream.value + " is truncated");
  return std::optional<snapshot>{snapshot{stream_version{get_be64(value.data())}, value.substr(8)}};
}

// Console keys: run, NUL, big-endian offset of the chunk's first byte, so
// that a run's chunks sort in order and the last one gives its size.
namespace {
std::string console_key(const std::string& run, std::uint64_t offset) {
  std::string k = run;
  k.push_back('\0');
  put_be64(k, offset);
  return k;
}
} // namespace

result<std::uint64_t> rocksdb_event_log::console_size(const std::string& run) {
  std::unique_ptr<rocksdb::Iterator> it{
    impl_->db->NewIterator(rocksdb::ReadOptions{}, impl_->console)};
  auto prefix = console_key(run, 0).substr(0, run.size() + 1);
  it->SeekForPrev(console_key(run, UINT64_MAX));
  if (!it->status().ok())
    return io_error(it->status(), "console size");
  if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8)
    return std::uint64_t{0};
  return get_be64(it->key().data() + prefix.size()) + it->value().size();
}

result<console_append> rocksdb_event_log::append_console(const std::string& run,
                                                         std::uint64_t offset,
                                                         std::string_view bytes) {
  if (impl_->opts.read_only)
    return make_error(errc::read_only, "the log is open read-only");
  std::lock_guard lock{impl_->console_mu};
  auto size = console_size(run);
  if (!size)
    return size.error();
  if (offset > *size)
    return error{"gap", "offset " + std::to_string(offset) + " is past the console's end at "
                          + std::to_string(*size)};
  auto skip = *size - offset;
  if (skip >= bytes.size())
    return console_append{*size, *size, 0};
  auto fresh = bytes.substr(skip);
  // Not synced: console bytes are not events. The WAL keeps them across a
  // process crash; a machine crash may lose the last ones, which a worker
  // resends (its offsets say where the server is).
  auto s = impl_->db->Put(rocksdb::WriteOptions{}, impl_->console, console_key(run, *size),
                          rocksdb::Slice{fresh.data(), fresh.size()});
  if (!s.ok())
    return io_error(s, "append console");
  return console_append{*size + fresh.size(), *size, fresh.size()};
}

result<std::string> rocksdb_event_log::read_console(const std::string& run, std::uint64_t offset,
                                                    std::size_t max) {
  std::unique_ptr<rocksdb::Iterator> it{
    impl_->db->NewIterator(rocksdb::ReadOptions{}, impl_->console)};
  auto prefix = console_key(run, 0).substr(0, run.size() + 1);
  std::string out;
  // The chunk holding `offset` starts at or before it.
  it->SeekForPrev(console_key(run, offset));
  if (!it->Valid() || !it->key().starts_with(prefix))
    it->Seek(console_key(run, offset));
  for (; it->Valid() && out.size() < max; it->Next()) {
    auto key = it->key();
    if (!key.starts_with(prefix) || key.size() != prefix.size() + 8)
      break;
    auto start = get_be64(key.data() + prefix.size());
    auto value = it->value();
    auto end = start + value.size();
    if (end <= offset)
      continue;
    auto from = offset > start ? offset - start : 0;
    auto take = std::min<std::uint64_t>(value.size() - from, max - out.size());
    out.append(value.data() + from, take);
  }
  if (!it->status().ok())
    return io_error(it->status(), "read console");
  return out;
}

status_result rocksdb_event_log::scan_records(
  global_seq after, bool verify_checksums,
  const std::function<bool(std::uint64_t, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = verify_checksums;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(ro, impl_->records)};
  for (it->Seek(seq_key(after.value + 1)); it->Valid(); it->Next()) {
    auto k = it->key();
    if (k.size() != 8)
      return make_error(errc::corrupt, "record key of " + std::to_string(k.size()) + " bytes");
    if (!fn(get_be64(k.data()), {it->value().data(), it->value().size()}))
      return ok;
  }
  if (!it->status().ok())
    return io_error(it->status(), "scan");
  return ok;
}

status_result rocksdb_event_log::refresh() { return impl_->refresh(); }

} // namespace kiln::storage
