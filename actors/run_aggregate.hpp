#pragma once
// The run aggregate: `decide(state, command) -> events | error` and
// `apply(state, event)`, pure. A run's life (status and who holds it):
//
//        queue                assign(w)              start(w)
//   ∅ ─────────> QUEUED ──────────────> QUEUED@w ─────────────> RUNNING@w
//                  ▲  │                   │  │                  │  │  │
//                  │  │ cancel            │  │ cancel: request  │  │  │ complete(w, PASSED|FAILED|
//                  │  ▼                   │  ▼ (w kills, reports)│  │  │   CANCELLED|TIMEOUT)
//                  │ CANCELLED            │ (as RUNNING)        │  │  ▼
//                  │                      │                     │  │  PASSED | FAILED | CANCELLED
//                  │   lose (attempt < max): requeued           │  │         | TIMEOUT
//                  └──────────────────────┴─────────────────────┘  │ time_out: TIMEOUT
//                      lose (attempt = max): FAILED                ▼
//
// Finished runs (PASSED, FAILED, CANCELLED, TIMEOUT) accept nothing but the
// same completion again, which is a no-op: workers retry status reports.
#include "events/event.hpp"
#include "events/result.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::run {

enum class errc {
  not_found,             // no such run
  already_exists,        // queue on an existing run
  illegal_transition,    // the command does not apply in this state
  not_assigned_to_you,   // a worker acting on a run it does not hold
  finished,              // the run is over
  invalid_argument,      // e.g. completing with a non-final status
};
std::string_view to_string(errc e);

struct state {
  bool exists = false;
  std::string project;
  std::uint32_t build = 0;
  std::string name;
  std::string host_tag;
  std::string rundef;
  std::uint32_t timeout_s = 0;
  kiln::status status = kiln::status::queued;
  std::string worker;  // who holds it; empty while unassigned
  std::uint32_t attempt = 0;
  bool cancel_requested = false;
  std::int32_t exit_code = 0;
  std::string message;
  std::vector<run_artifact_stored> artifacts;
  std::vector<run_tests_reported> tests;
  bool artifacts_expired = false;  // deleted by the retention policy
  std::string console_object;      // archived to the store under this name

  bool finished() const;
};

// ---- commands (imperative) ----
struct queue_run {
  std::string project;
  std::uint32_t build = 0;
  std::string name;
  std::string host_tag;
  std::string rundef;
  std::uint32_t timeout_s = 0;
  // The worker the scheduler gives it as it is queued, if any: queued and
  // assigned in one commit (one round trip to the log fewer per run).
  std::string worker;
};
struct assign_run {
  std::string worker;
};
struct start_run {
  std::string worker;
};
struct complete_run {
  std::string worker;
  kiln::status status = kiln::status::passed;  // PASSED, FAILED, CANCELLED or TIMEOUT
  std::int32_t exit_code = 0;
  std::string message;
  std::uint64_t console_size = 0;  // the console as the deciding core holds it
};
struct cancel_run {
  std::string reason;
};
struct time_out_run {
  std::string message;
};
struct lose_run {
  std::string reason;
  std::uint32_t max_attempts = 3;
  std::string worker;  // when set, only while this worker still holds the run
};
struct store_artifact {
  std::string worker;
  std::string path;
  std::uint64_t size = 0;
  std::string sha256;
};
struct report_tests {
  std::string worker;
  std::string suite;
  std::vector<test_result> results;
};

// The retention policy deleted the finished run's artifacts.
struct expire_artifacts {
  std::string reason;
};

// The finished run's console is stored as one object.
struct archive_console {
  std::string object;
  std::uint64_t size = 0;
  std::string sha256;
};

using command = std::variant<queue_run, assign_run, start_run, complete_run, cancel_run,
                             time_out_run, lose_run, store_artifact, report_tests,
                             expire_artifacts, archive_console>;

// The events the command makes (none: it changes nothing, e.g. a repeat),
// or why it is refused. All validation lives here.
result<std::vector<event>> decide(const state& s, const command& c);

// Folds one event into the state. Total: events of other aggregates are
// ignored; never fails.
void apply(state& s, const event& e);

} // namespace kiln::domain::run
