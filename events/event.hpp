#pragma once
// Domain events: immutable facts, one struct each, named in the past tense.
// Their stored form is schema/kiln.fbs; `type_name` matches the schema's
// union member and is what outside tools see (`kiln.evt.….<type_name>`).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln {

// Stored as schema::Status: never renumber.
enum class status : std::uint8_t {
  queued = 0,
  running = 1,
  passed = 2,
  failed = 3,
  cancelled = 4,
  timeout = 5,
  lost = 6,
  skipped = 7,
};

std::string_view to_string(status s);
// "PASSED" -> status::passed; nothing for a name that is not a status.
std::optional<status> status_from_string(std::string_view name);

// Sorted, so that encoding is deterministic.
using param_map = std::map<std::string, std::string>;

// ---- project ----
struct project_created {
  static constexpr std::string_view type_name = "ProjectCreated";
  std::string name;
  bool operator==(const project_created&) const = default;
};
struct project_definition_updated {
  static constexpr std::string_view type_name = "ProjectDefinitionUpdated";
  std::uint32_t definition_version = 0;
  std::string yaml;
  std::string content_sha256;
  bool operator==(const project_definition_updated&) const = default;
};
struct project_secret_set {
  static constexpr std::string_view type_name = "ProjectSecretSet";
  std::string key;
  std::string ciphertext;
  bool operator==(const project_secret_set&) const = default;
};
struct project_secret_removed {
  static constexpr std::string_view type_name = "ProjectSecretRemoved";
  std::string key;
  bool operator==(const project_secret_removed&) const = default;
};
struct project_deleted {
  static constexpr std::string_view type_name = "ProjectDeleted";
  std::string reason;
  bool operator==(const project_deleted&) const = default;
};

struct build_number_allocated {
  static constexpr std::string_view type_name = "BuildNumberAllocated";
  std::uint32_t number = 0;
  std::string trigger;
  std::uint32_t definition_version = 0;
  param_map params;
  std::string ref;
  std::string sha;
  std::string reason;
  std::int32_t priority = 0;
  std::uint32_t rerun_of = 0;                 // 0: not a rerun
  std::vector<std::string> only_runs;         // empty: every run of the trigger
  bool operator==(const build_number_allocated&) const = default;
};

struct cron_slot_reached {
  static constexpr std::string_view type_name = "CronSlotReached";
  std::string trigger;
  std::int64_t slot_unix_s = 0;
  bool fired = false;
  bool operator==(const cron_slot_reached&) const = default;
};
struct git_refs_polled {
  static constexpr std::string_view type_name = "GitRefsPolled";
  std::string trigger;
  std::string url;
  param_map refs;  // ref name -> sha
  bool operator==(const git_refs_polled&) const = default;
};

// ---- build ----
struct build_created {
  static constexpr std::string_view type_name = "BuildCreated";
  std::string project;
  std::uint32_t number = 0;
  std::string trigger;
  param_map params;
  std::string ref;
  std::string sha;
  std::string reason;
  std::uint32_t definition_version = 0;
  std::vector<std::string> runs;
  std::int32_t priority = 0;  // higher first
  std::uint32_t rerun_of = 0;
  bool operator==(const build_created&) const = default;
};
struct build_cancelled {
  static constexpr std::string_view type_name = "BuildCancelled";
  std::string reason;
  bool operator==(const build_cancelled&) const = default;
};
struct build_completed {
  static constexpr std::string_view type_name = "BuildCompleted";
  kiln::status status = status::passed;
  bool operator==(const build_completed&) const = default;
};

// Notifications (issue 7): what a build's outcome is to be told to
// (planned with BuildCompleted), each delivery attempt claimed before it is
// made (a lease, so that two cores never both send it) and its outcome.
// Commit statuses are not planned: the read model derives one per run
// start and end for builds with GH_OWNER/GH_REPO or GL_PROJECT_ID params.
struct notification_planned {
  static constexpr std::string_view type_name = "NotificationPlanned";
  std::string id;    // "webhook/0", "email", "status/<run>/<attempt>/done"
  std::string kind;  // webhook | email | github_status | gitlab_status
  std::string spec;  // JSON: where and what (docs/events.md)
  bool operator==(const notification_planned&) const = default;
};
struct notification_started {
  static constexpr std::string_view type_name = "NotificationStarted";
  std::string id;
  std::uint32_t attempt = 1;
  std::int64_t lease_until_ms = 0;  // after this another attempt may start
  bool operator==(const notification_started&) const = default;
};
struct notification_finished {
  static constexpr std::string_view type_name = "NotificationFinished";
  std::string id;
  std::uint32_t attempt = 1;
  bool delivered = false;
  std::string detail;            // "HTTP 200", "connection refused", ...
  std::int64_t retry_at_ms = 0;  // not delivered: when to try again; 0: given up
  bool operator==(const notification_finished&) const = default;
};

// A build kept whatever the project's retention says (a release, a build
// someone must look at): `name` promotes it ("v1.2"), empty just pins it.
struct build_pinned {
  static constexpr std::string_view type_name = "BuildPinned";
  std::string name;
  std::string reason;
  bool operator==(const build_pinned&) const = default;
};
struct build_unpinned {
  static constexpr std::string_view type_name = "BuildUnpinned";
  std::string reason;
  bool operator==(const build_unpinned&) const = default;
};

struct build_runs_added {
  static constexpr std::string_view type_name = "BuildRunsAdded";
  std::string trigger;
  std::string parent_run;
  std::vector<std::string> runs;
  bool operator==(const build_runs_added&) const = default;
};

// ---- run ----
struct run_queued {
  static constexpr std::string_view type_name = "RunQueued";
  std::string project;
  std::uint32_t build = 0;
  std::string name;
  std::string host_tag;
  std::string rundef;
  std::uint32_t attempt = 1;
  std::uint32_t timeout_s = 0;
  bool operator==(const run_queued&) const = default;
};
struct run_assigned {
  static constexpr std::string_view type_name = "RunAssigned";
  std::string worker;
  std::uint32_t attempt = 1;
  bool operator==(const run_assigned&) const = default;
};
struct run_started {
  static constexpr std::string_view type_name = "RunStarted";
  std::string worker;
  bool operator==(const run_started&) const = default;
};
struct run_completed {
  static constexpr std::string_view type_name = "RunCompleted";
  kiln::status status = status::passed;
  std::int32_t exit_code = 0;
  std::string message;
  // The console's size once its worker's last bytes were in (0: not known):
  // a core whose copy of the consoles holds less has not got them all yet.
  std::uint64_t console_size = 0;
  bool operator==(const run_completed&) const = default;
};
struct run_cancel_requested {
  static constexpr std::string_view type_name = "RunCancelRequested";
  std::string reason;
  bool operator==(const run_cancel_requested&) const = default;
};
struct run_requeued {
  static constexpr std::string_view type_name = "RunRequeued";
  std::string reason;
  std::uint32_t attempt = 0;
  bool operator==(const run_requeued&) const = default;
};
struct run_artifact_stored {
  static constexpr std::string_view type_name = "RunArtifactStored";
  std::string path;
  std::uint64_t size = 0;
  std::string sha256;
  bool operator==(const run_artifact_stored&) const = default;
};
// The run's artifacts were deleted from the store by the project's
// retention policy; the run and its listing stay (marked expired).
struct run_artifacts_expired {
  static constexpr std::string_view type_name = "RunArtifactsExpired";
  std::string reason;
  bool operator==(const run_artifacts_expired&) const = default;
};

// A finished run's console, stored as one object next to its artifacts
// (S3 stores); the live console path is unchanged.
struct run_console_archived {
  static constexpr std::string_view type_name = "RunConsoleArchived";
  std::string object;  // the store's name for it
  std::uint64_t size = 0;
  std::string sha256;
  bool operator==(const run_console_archived&) const = default;
};

struct test_result {
  std::string name;
  kiln::status status = status::passed;
  std::uint64_t duration_ms = 0;
  std::string message;
  bool operator==(const test_result&) const = default;
};
struct run_tests_reported {
  static constexpr std::string_view type_name = "RunTestsReported";
  std::string suite;
  std::vector<test_result> results;
  bool operator==(const run_tests_reported&) const = default;
};

// ---- worker ----
struct worker_registered {
  static constexpr std::string_view type_name = "WorkerRegistered";
  std::string name;
  std::vector<std::string> tags;
  std::uint32_t concurrency = 1;
  std::string host_json;
  std::string token_sha256;
  bool operator==(const worker_registered&) const = default;
};
struct worker_enlisted {
  static constexpr std::string_view type_name = "WorkerEnlisted";
  bool operator==(const worker_enlisted&) const = default;
};
struct worker_delisted {
  static constexpr std::string_view type_name = "WorkerDelisted";
  std::string reason;
  bool operator==(const worker_delisted&) const = default;
};
struct worker_deleted {
  static constexpr std::string_view type_name = "WorkerDeleted";
  std::string reason;
  bool operator==(const worker_deleted&) const = default;
};
struct worker_offline {
  static constexpr std::string_view type_name = "WorkerOffline";
  std::string reason;
  bool operator==(const worker_offline&) const = default;
};
struct worker_online {
  static constexpr std::string_view type_name = "WorkerOnline";
  bool operator==(const worker_online&) const = default;
};

// ---- token ----
struct token_issued {
  static constexpr std::string_view type_name = "TokenIssued";
  std::string id;
  std::string label;
  std::string scope;
  std::string project;
  std::string token_sha256;
  bool operator==(const token_issued&) const = default;
};
struct token_revoked {
  static constexpr std::string_view type_name = "TokenRevoked";
  std::string reason;
  bool operator==(const token_revoked&) const = default;
};

using event = std::variant<
  project_created, project_definition_updated, project_secret_set,
  project_secret_removed, project_deleted, build_number_allocated,
  cron_slot_reached, git_refs_polled,
  build_created, build_cancelled, build_completed, build_runs_added,
  notification_planned, notification_started, notification_finished, build_pinned, build_unpinned,
  run_queued, run_assigned, run_started, run_completed, run_cancel_requested,
  run_requeued, run_artifact_stored, run_tests_reported, run_artifacts_expired,
  run_console_archived,
  worker_registered, worker_enlisted, worker_delisted, worker_deleted,
  worker_offline, worker_online, token_issued, token_revoked>;

// The event's schema name, e.g. "RunCompleted".
std::string_view type_name(const event& e);

} // namespace kiln
