#pragma once
// The narrow event-log interface every aggregate host and projection uses
// (DESIGN.md "The event log"). The RocksDB log implements it now; a
// JetStream-backed log implements it for clusters (issue 6).
#include "events/commit.hpp"
#include "events/result.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::storage {

enum class errc {
  conflict,          // the stream's version was not the expected one
  io,                // the disk said no; nothing was acknowledged
  corrupt,           // stored bytes failed verification
  closed,            // the log is shutting down
  read_only,         // opened beside a running server: no appends
  invalid_argument,  // e.g. an append with no events
};
std::string_view to_string(errc e);
error make_error(errc e, std::string message);

struct append_request {
  stream_id stream;
  // The stream's last version as the writer saw it; 0: the stream must not
  // exist yet. Anything else is a conflict: re-read, decide again.
  // A non-empty meta.command_id makes the append idempotent: a retry with
  // the same id returns the first receipt (duplicate = true) whatever the
  // expected version; the same id on another stream is invalid_argument.
  stream_version expected;
  std::vector<event> events;
  commit_metadata meta;
};

struct append_receipt {
  global_seq seq;
  stream_version last_version;
  // True when the commit's command id was already in the log: nothing was
  // appended, and seq/last_version are those of the first commit.
  bool duplicate = false;
};

// Called exactly once, after the commit is durable or has failed. It runs on
// the log's writer thread: it must not block (post a message, set a promise).
using append_callback = std::function<void(result<append_receipt>)>;

struct snapshot {
  stream_version version;  // the state includes every event up to this one
  std::string bytes;
};

// Receives commits in global order; returning false ends the subscription.
using commit_handler = std::function<bool(const logged_commit&)>;
// Called at most once, when the subscription cannot go on (corrupt record).
using error_handler = std::function<void(const error&)>;

// Where a subscription's live commits are handed over. History is always
// read on the subscription's own thread. `writer_thread`: once caught up,
// each new commit goes to the handler on the thread that made it durable
// (the writer, or a copy's delivery thread), with no thread woken in
// between; for handlers that never block (a message send), since the
// writer waits for them.
enum class live_delivery { own_thread, writer_thread };

// Delivery stops when this handle is destroyed (destruction waits for a
// handler call in progress to return).
class subscription {
 public:
  virtual ~subscription() = default;
};

class event_log {
 public:
  virtual ~event_log() = default;

  virtual void append_async(append_request req, append_callback done) = 0;

  // append_async and wait: for threads that may block (never a CAF scheduler
  // thread or an Asio thread).
  result<append_receipt> append(append_request req);

  // Commits of one stream holding versions >= `from`, in order, at most `max`.
  virtual result<std::vector<logged_commit>>
  read_stream(const stream_id& stream, stream_version from, std::size_t max) = 0;

  // Commits with sequence > `after`, in order, at most `max`.
  virtual result<std::vector<logged_commit>> read_all(global_seq after, std::size_t max) = 0;

  // 0 when the stream has no events.
  virtual result<stream_version> last_version(const stream_id& stream) = 0;

  // The receipt of the durable commit made by `command_id` (duplicate =
  // true), or nothing when the id is not in the de-duplication window.
  virtual std::optional<append_receipt> find_command(const std::string& command_id) = 0;

  // The last durable commit's sequence; 0 for an empty log.
  virtual global_seq last_seq() const = 0;

  // A replica is a cluster core's copy of the cluster's log: it may lag
  // commits another core made. A log that is the whole truth is none.
  virtual bool replica() const { return false; }
  // A replica calls `done` once it holds every commit the cluster's log held
  // when this was called, with its own last sequence then; nullopt when it
  // cannot tell (and at once when it is no replica).
  virtual void sync_async(std::function<void(std::optional<global_seq>)> done) { done(std::nullopt); }

  // Every commit after `after`: history first, then live, with no gap and no
  // duplicate while appends continue. Handlers run on the subscription's own
  // thread, or live ones on the writer's (live_delivery).
  virtual std::unique_ptr<subscription>
  subscribe(global_seq after, commit_handler on_commit, error_handler on_error = {},
            live_delivery live = live_delivery::own_thread) = 0;

  // Snapshots are a cache: losing one costs replay time, never correctness,
  // so they are written without a sync.
  virtual status_result save_snapshot(const stream_id& stream, const snapshot& s) = 0;
  virtual result<std::optional<snapshot>> load_snapshot(const stream_id& stream) = 0;
};

} // namespace kiln::storage
