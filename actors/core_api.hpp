#pragma once
// What the core answers: the use cases the gateway (and tools, tests,
// benchmarks) ask for. Plain values, no actor types: in `kiln up` they
// travel in process; in a cluster the bus carries them (issue 6).
#include "actors/console_archive.hpp"
#include "actors/credentials.hpp"
#include "actors/notifications.hpp"
#include "actors/retention.hpp"
#include "actors/read_model.hpp"
#include "actors/run_aggregate.hpp"
#include "actors/scheduler.hpp"
#include "events/event.hpp"
#include "events/ids.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace kiln::core {

// ---- commands ----
struct put_project {
  std::string name;
  std::string yaml;
};
struct delete_project {
  std::string name;
};
struct set_secret {
  std::string project;
  std::string key;
  std::string value;  // sealed by the core before any event holds it
};
struct remove_secret {
  std::string project;
  std::string key;
};
struct trigger_build {
  std::string project;
  std::string trigger;
  param_map params;
  std::string ref;
  std::string sha;
  std::string reason;
  std::int32_t priority = 0;
};
struct cancel_build {
  std::string project;
  std::uint32_t build = 0;
};
struct rerun_build {
  std::string project;
  std::uint32_t build = 0;
  bool failed_only = false;
};
struct cancel_run {
  domain::run_key run;
};
struct register_worker {
  std::string name;
  std::vector<std::string> tags;
  std::uint32_t concurrency = 1;
  std::string host_json;
};
struct enlist_worker {
  std::string name;
};
struct delist_worker {
  std::string name;
};
struct delete_worker {
  std::string name;
};
// A worker's periodic call: it is alive; the reply holds the runs it holds
// and has not started (with their rundefs and secrets).
struct worker_checkin {
  std::string name;
  std::string token;
  bool accepting = true;  // false: draining or low on disk, assign it nothing new
  // The runs the worker has under way, when it says: a run RUNNING on it
  // that it does not have was lost (the worker restarted) and is requeued.
  std::optional<std::set<std::string>> active;
  // Held open up to this long while the core has nothing for the worker
  // that it does not know of yet (`known_runs`, `known_stopping`: run ids
  // it has, and is stopping): answered as soon as a run is assigned to it
  // or one it has is to stop, without the gateway asking again. 0: at once.
  std::chrono::milliseconds hold{0};
  std::set<std::string> known_runs, known_stopping;
};
struct report_run {
  domain::run_key run;
  std::string worker;
  kiln::status status = kiln::status::running;  // RUNNING or a final status
  std::int32_t exit_code = 0;
  std::string message;
  // A final status's console size after its last bytes (core_service sets
  // it from its own append; a worker's word is not taken).
  std::uint64_t console_size = 0;
};
struct store_artifact {
  domain::run_key run;
  std::string worker;
  std::string path;
  std::uint64_t size = 0;
  std::string sha256;
};
struct report_tests {
  domain::run_key run;
  std::string worker;
  std::string suite;
  std::vector<test_result> results;
};

// An API token. Without `token` the core makes one (shown once); with it,
// that value is registered (how a node installs its admin token file).
struct issue_token {
  std::string id;  // empty: a fresh one
  std::string label;
  std::string scope;  // read | trigger | admin
  std::string project;
  std::string token;
};
struct revoke_token {
  std::string id;
};
// Console bytes from the worker that holds the run, at a byte offset.
struct append_console {
  domain::run_key run;
  std::string worker;
  std::uint64_t offset = 0;
  std::string data;
};

// What the core's git poller saw at one URL of a git_poller trigger
// (domain::project::record_git_refs says what it makes).
struct record_git_refs {
  std::string project;
  std::string trigger;
  std::string url;
  param_map refs;  // matching ref -> sha
  std::set<std::string> skip;  // refs whose new head asks for [skip ci]
};

// A webhook as it arrived (domain/webhooks.hpp verifies and decides it).
struct receive_webhook {
  std::string kind;  // github, gitlab, generic
  std::string project;
  std::string trigger;  // optional: only this trigger
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Keeps a build's artifacts whatever the retention policy says; a name
// promotes it ("v1.2").
struct pin_build {
  std::string project;
  std::uint32_t build = 0;
  std::string name;
  std::string reason;
};
struct unpin_build {
  std::string project;
  std::uint32_t build = 0;
  std::string reason;
};
// The retention sweeper deleted a run's artifacts: its listing says so.
struct expire_artifacts {
  domain::run_key run;
  std::string reason;
};
// The console archiver stored a finished run's console as one object.
struct archive_console {
  domain::run_key run;
  std::string object;
  std::uint64_t size = 0;
  std::string sha256;
};
// The core's notifier claims a notification's next attempt (refused with
// "not_due" when it is settled, under way or waiting to be retried) and
// then says how it went (notifications.hpp). Not on the bus or HTTP.
struct start_notification {
  std::string project;
  std::uint32_t build = 0;
  std::string id;
  std::int64_t lease_ms = 60'000;
};
struct finish_notification {
  std::string project;
  std::uint32_t build = 0;
  std::string id;
  std::uint32_t attempt = 1;
  bool delivered = false;
  std::string detail;
  std::int64_t retry_at_ms = 0;  // 0 when not delivered: given up
};
using request = std::variant<put_project, delete_project, set_secret, remove_secret, trigger_build,
                             cancel_build, rerun_build, cancel_run, register_worker, enlist_worker,
                             delist_worker, delete_worker, worker_checkin, report_run,
                             store_artifact, report_tests, issue_token, revoke_token,
                             append_console, record_git_refs, receive_webhook,
                             start_notification, finish_notification, pin_build, unpin_build,
                             expire_artifacts, archive_console>;

// Who asks, and the idempotency key: a request repeated with the same id
// gets the first reply and changes nothing.
struct request_context {
  std::string principal = "system";
  std::string command_id;
};

// ---- replies ----
struct receipt {
  global_seq seq;  // 0 when nothing changed
  bool duplicate = false;
};
struct build_ref {
  global_seq seq;
  std::string project;
  std::uint32_t build = 0;
  std::vector<std::string> runs;
};
struct worker_token {
  global_seq seq;
  std::string token;  // shown once; the log holds only its hash
};
struct handed_run {
  domain::run_key run;
  std::string rundef;  // JSON with "secrets": {key: value}
};
struct checkin_reply {
  std::vector<handed_run> runs;
  std::vector<domain::run_key> cancel;  // runs it holds that were asked to stop
  bool waited = false;  // held for all of its hold: nothing new came
};
struct api_token {
  global_seq seq;
  std::string id;
  std::string token;  // shown once; the log holds only its hash
};

// The builds a webhook started (none for a ping or a gated pull request).
struct webhook_ack {
  global_seq seq;
  std::vector<std::uint32_t> builds;
  std::string note;
};
struct console_ack {
  std::uint64_t size = 0;      // the console's length now
  std::uint64_t new_from = 0;  // where the bytes this chunk added begin
  std::string added;           // those bytes (none for a resent chunk)
};

// A notification's attempt, claimed.
struct notification_claim {
  global_seq seq;
  std::uint32_t attempt = 1;
};
using reply = std::variant<receipt, build_ref, worker_token, checkin_reply, api_token, console_ack,
                           webhook_ack, notification_claim>;

// ---- queries ----
struct list_projects {};
struct get_project {
  std::string name;
};
struct list_builds {
  std::string project;
  std::size_t limit = 20;
  std::uint32_t before = 0;
};
struct get_build {
  std::string project;
  std::uint32_t build = 0;
};
struct get_run {
  domain::run_key run;
};
struct list_workers {};
struct get_queue {};
// Who holds this bearer token (see credentials.hpp).
struct authenticate {
  std::string token;
};
struct list_tokens {};
struct read_console {
  domain::run_key run;
  std::uint64_t offset = 0;
  std::size_t max = 1024 * 1024;
};
struct get_stats {};

// A query may ask to see at least the effects of commit `min_seq` (the seq
// of a reply it got): read-your-writes.
// Every git_poller trigger of every live project, for the core's poller.
struct list_git_pollers {};
// A project secret's clear value, for the core's own use (the git poller's
// token); no bus subject or HTTP route asks it.
struct open_secret {
  std::string project;
  std::string key;
};

// The notifications whose next attempt may start now, for the core's notifier.
struct list_due_notifications {};
// The finished runs whose artifacts the retention policies expire now.
struct list_expired_artifacts {};
// Finished runs whose console is not archived yet (at most `limit`).
struct list_unarchived_consoles {
  std::size_t limit = 50;
};
using query = std::variant<list_projects, get_project, list_builds, get_build, get_run,
                           list_workers, get_queue, authenticate, list_tokens, read_console,
                           get_stats, list_git_pollers, open_secret, list_due_notifications,
                           list_expired_artifacts, list_unarchived_consoles>;

// A project without its builds (list them with list_builds).
struct project_info {
  std::string name;
  bool deleted = false;
  std::uint32_t definition_version = 0;
  std::string content_sha256;
  std::string description;
  bool synchronous_builds = false;
  std::vector<std::string> secret_keys;  // names only: values never leave the core
  std::uint32_t last_build = 0;
  std::int64_t created_ns = 0;
  std::int64_t updated_ns = 0;
  // The last build's outcome, for lists and badges ("" when there is none).
  std::string last_status;
  std::int64_t last_created_ns = 0;
  std::int64_t last_completed_ns = 0;
};
// A trigger as a person starting it needs it: its name, type and params.
struct trigger_info {
  std::string name;
  std::string type;
  param_map params;
};
struct project_detail {
  project_info info;
  std::string yaml;
  std::vector<trigger_info> triggers;
  // What its self-starting triggers have recorded (issue 7).
  std::map<std::string, std::int64_t> cron_slots;
  std::map<std::string, std::map<std::string, param_map>> git_refs;
};
// A worker as listed: its summary and when the answering core last heard
// from it (0: not since that core started; cores keep this apart).
struct worker_info {
  domain::worker_summary summary;
  std::int64_t last_checkin_ns = 0;
};
struct run_detail {
  domain::run_summary summary;
  domain::run::state state;  // rundef (without secrets), artifacts, tests
};

struct console_text {
  std::uint64_t offset = 0;
  std::string data;
  std::uint64_t size = 0;   // the console's length when read
  bool finished = false;    // the run has ended: nothing more will come
  kiln::status status = kiln::status::queued;
};
struct core_metrics {
  global_seq seq;
  std::size_t queue_length = 0;
  std::map<std::string, std::size_t> runs_by_status;
  std::size_t workers_online = 0;
};

struct git_poller_info {
  std::string project;
  std::string trigger;
  std::vector<std::string> urls;       // GIT_URL
  std::vector<std::string> ref_globs;  // GIT_POLL_REFS (every ref when empty)
  int interval_s = 60;
  std::map<std::string, param_map> seen;  // url -> ref -> sha, as recorded
  std::string token_secret;               // git-token: a secret's name
};
struct secret_value {
  std::string value;
};

using query_result =
  std::variant<std::vector<project_info>, project_detail,
               std::vector<domain::build_summary>, domain::build_summary, run_detail,
               std::vector<worker_info>, std::vector<domain::waiting_run>,
               domain::grant, std::vector<domain::token_summary>, console_text, core_metrics,
               std::vector<git_poller_info>, secret_value,
               std::vector<domain::due_notification>, std::vector<domain::expiring_run>,
               std::vector<domain::run_key>>;

} // namespace kiln::core
