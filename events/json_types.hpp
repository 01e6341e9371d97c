#pragma once
// nlohmann::json conversions of the event structs, in one place for every
// module that renders or stores them as JSON (events/json.cpp, snapshots).
// Heavy: include it only from .cpp files.
#include "events/event.hpp"

#include <nlohmann/json.hpp>

namespace kiln {

NLOHMANN_JSON_SERIALIZE_ENUM(status, {
  {status::queued, "QUEUED"}, {status::running, "RUNNING"}, {status::passed, "PASSED"},
  {status::failed, "FAILED"}, {status::cancelled, "CANCELLED"}, {status::timeout, "TIMEOUT"},
  {status::lost, "LOST"}, {status::skipped, "SKIPPED"},
})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_created, name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_definition_updated, definition_version, yaml,
                                   content_sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_secret_removed, key)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_deleted, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_number_allocated, number, trigger, definition_version,
                                   params, ref, sha, reason, priority, rerun_of, only_runs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(cron_slot_reached, trigger, slot_unix_s, fired)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(git_refs_polled, trigger, url, refs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_created, project, number, trigger, params, ref, sha,
                                   reason, definition_version, runs, priority, rerun_of)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_cancelled, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_completed, status)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_runs_added, trigger, parent_run, runs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(notification_planned, id, kind, spec)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_pinned, name, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(build_unpinned, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_artifacts_expired, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_console_archived, object, size, sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(notification_started, id, attempt, lease_until_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(notification_finished, id, attempt, delivered, detail,
                                   retry_at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_queued, project, build, name, host_tag, rundef, attempt,
                                   timeout_s)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_assigned, worker, attempt)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_started, worker)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(run_completed, status, exit_code, message, console_size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_cancel_requested, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_requeued, reason, attempt)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_artifact_stored, path, size, sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(test_result, name, status, duration_ms, message)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(run_tests_reported, suite, results)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(worker_registered, name, tags, concurrency, host_json,
                                   token_sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(worker_delisted, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(worker_deleted, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(worker_offline, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(token_issued, id, label, scope, project, token_sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(token_revoked, reason)

} // namespace kiln
