#pragma once
// The core's projections: projects, builds, runs, workers and the queue, as
// compact summaries folded from the log in order. Pure (no I/O, no clock):
// the same commits give the same model, live or rebuilt at start. What is
// bulky (rundefs, definitions of old versions, artifacts) stays in the log
// and the aggregates; the model keeps what lists, the scheduler and the
// process managers need.
#include "actors/build_aggregate.hpp"
#include "actors/project_definition.hpp"
#include "events/commit.hpp"
#include "events/event.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace kiln::domain {

// Names one run: project, build number, run name.
struct run_key {
  std::string project;
  std::uint32_t build = 0;
  std::string name;
  auto operator<=>(const run_key&) const = default;
  std::string path() const;    // "<project>/<build>/<name>": the run id outsiders see
  std::string stream() const;  // "run/" + path()
  stream_id id() const { return {stream()}; }
};

struct run_summary {
  std::string name;
  std::string host_tag;
  kiln::status status = kiln::status::queued;
  std::string worker;        // who holds it; empty while unassigned
  std::uint32_t attempt = 1;
  std::uint32_t timeout_s = 0;
  std::int32_t exit_code = 0;
  bool cancel_requested = false;
  global_seq queued_seq;     // its place in the queue (FIFO)
  std::int64_t queued_ns = 0;
  std::int64_t started_ns = 0;
  std::int64_t finished_ns = 0;
  std::uint64_t console_size = 0;   // as RunCompleted gave it (0: not known; not in snapshots)
  std::uint32_t artifacts = 0;      // stored
  bool artifacts_expired = false;   // deleted by the retention policy
  bool console_archived = false;    // stored as one object (S3 stores)

  bool finished() const;
  bool assigned() const { return !worker.empty() && status == kiln::status::queued; }
};

// One notification of a build (notifications.hpp): planned with its
// completion, or a commit status derived from a run's queueing and end.
struct notification_summary {
  std::string kind;
  std::string spec;
  std::string run;          // a commit status's run; empty otherwise
  std::uint32_t order = 0;  // its place among the build's notifications
  build::notification_state state;
  std::string detail;       // the latest attempt's outcome
  bool superseded = false;  // a later status of its run came before it was sent
  bool settled() const { return superseded || state.settled(); }
};

struct build_summary {
  std::string project;
  std::uint32_t number = 0;
  build_created facts;                // as created; facts.runs are the first runs
  std::vector<build_runs_added> added;
  std::vector<run_summary> runs;      // queued so far, in the build's order (run_names)
  bool cancelled = false;
  bool completed = false;
  kiln::status result = kiln::status::running;
  std::int64_t created_ns = 0;
  std::int64_t completed_ns = 0;
  std::map<std::string, notification_summary> notifications;  // by id
  bool pinned = false;  // kept whatever the retention policy says
  std::string pin_name;

  const run_summary* run(std::string_view name) const;
  run_summary* run(std::string_view name);
  // Every run the build has or should have (facts.runs + added runs).
  std::vector<std::string> run_names() const;
  // A run as a reader sees it: queued, or named by the build and not queued
  // yet. The build's commit comes first and its runs' RunQueued just after,
  // while the trigger's answer already names them: QUEUED to a reader, as
  // it soon is; none once the build was cancelled or completed without it.
  std::optional<run_summary> readable_run(std::string_view name) const;
  // Every readable run, in the build's order.
  std::vector<run_summary> readable_runs() const;
};

struct project_summary {
  std::string name;
  bool deleted = false;
  std::uint32_t definition_version = 0;
  std::string content_sha256;
  std::string yaml;                                       // the current version's text
  std::shared_ptr<const project_definition> definition;  // ...parsed
  std::set<std::string> secret_keys;
  std::uint32_t last_build = 0;
  // Allocated numbers whose BuildCreated has not been seen yet.
  std::map<std::uint32_t, build_number_allocated> allocated;
  std::map<std::uint32_t, build_summary> builds;
  std::int64_t created_ns = 0;
  std::int64_t updated_ns = 0;
  // What the cron and git_poller triggers have seen (as in the aggregate).
  std::map<std::string, std::int64_t> cron_slots;
  std::map<std::string, std::map<std::string, param_map>> git_refs;

  bool synchronous() const { return definition && definition->synchronous_builds; }
};

struct worker_summary {
  std::string name;
  std::vector<std::string> tags;
  std::uint32_t concurrency = 1;
  std::string host_json;
  std::string token_sha256;
  bool enlisted = false;
  bool online = false;
  bool deleted = false;
  std::set<run_key> holds;  // assigned or running on it
};

// An API token as the gateway needs it to authorise a request.
struct token_summary {
  std::string id;
  std::string label;
  std::string scope;    // read | trigger | admin
  std::string project;  // empty: every project
  std::string token_sha256;
  bool revoked = false;
  std::int64_t issued_ns = 0;
};

class read_model {
 public:
  // Folds one commit in; commits must come in log order (older ones are
  // ignored, so a replayed commit changes nothing).
  void apply(const logged_commit& c);

  global_seq seq() const { return seq_; }

  const std::map<std::string, project_summary>& projects() const { return projects_; }
  const project_summary* project(std::string_view name) const;
  const build_summary* build(std::string_view project, std::uint32_t number) const;
  const run_summary* run(const run_key& k) const;
  // build_summary::readable_run of the run's build.
  std::optional<run_summary> readable_run(const run_key& k) const;
  const std::map<std::string, worker_summary>& workers() const { return workers_; }
  const worker_summary* worker(std::string_view name) const;
  const std::map<std::string, token_summary>& tokens() const { return tokens_; }

  // Builds of a project, newest first: at most `limit`, numbered below
  // `before` (0: from the newest).
  std::vector<const build_summary*> builds(std::string_view project, std::size_t limit,
                                           std::uint32_t before = 0) const;

  // Runs waiting for a worker (QUEUED, unassigned), in queue order.
  const std::map<global_seq, run_key>& queue() const { return queue_; }

  // Builds not completed yet, and allocations not yet built: what the
  // process managers look after.
  const std::set<std::pair<std::string, std::uint32_t>>& open_builds() const { return open_; }

  // Builds with a notification not yet delivered or given up.
  const std::set<std::pair<std::string, std::uint32_t>>& notifying() const { return notifying_; }

  // Finished runs whose console is not archived yet (console_archive.hpp).
  const std::set<run_key>& unarchived_consoles() const { return unarchived_; }

  // The model as bytes, and back (a start-up cache: a snapshot that does not
  // decode is ignored and the log is folded from the start).
  std::string encode() const;
  static std::optional<read_model> decode(std::string_view bytes);

 private:
  void apply_project(project_summary& p, const commit& c, const event& e);
  void apply_build(const stream_id& s, const commit& c, const event& e, global_seq seq);
  void apply_run(const stream_id& s, const commit& c, const event& e, global_seq seq);
  void apply_worker(worker_summary& w, const commit& c, const event& e);
  void add_status(build_summary& b, const run_summary& r, kiln::status state);
  void track_notifications(const build_summary& b);
  project_summary& project_entry(std::string_view name);

  std::map<std::string, project_summary> projects_;
  std::map<std::string, worker_summary> workers_;
  std::map<std::string, token_summary> tokens_;
  std::map<global_seq, run_key> queue_;
  std::set<std::pair<std::string, std::uint32_t>> open_;
  std::set<std::pair<std::string, std::uint32_t>> notifying_;
  std::set<run_key> unarchived_;
  global_seq seq_;
};

// "run/<project>/<build>/<name>" (and "build/<project>/<n>") back to parts.
std::optional<run_key> parse_run_stream(std::string_view stream);
std::optional<std::pair<std::string, std::uint32_t>> parse_build_stream(std::string_view stream);

} // namespace kiln::domain
