#pragma once
// The process managers (sagas), pure: from the model as it stands they say
// what must happen next. Because they look at state rather than at single
// events, running them twice, or again after a restart, asks for nothing
// that is already done; and the aggregates refuse what was done meanwhile
// (already_exists, illegal_transition), which the core treats as done.
//
//  - an allocated build number with no build  -> create the build
//  - a build whose runs are not all queued    -> queue them
//  - a cancelled build                        -> cancel its unfinished runs
//  - a run passed that chains a trigger       -> add the chained runs
//  - every run finished                       -> build-level chains, or
//                                                complete the build
//  - a worker silent for too long             -> mark it offline
//  - runs held by an offline worker           -> lose them (requeue or fail)
//  - a RUNNING run past timeout + grace       -> time it out
//  - a cron trigger whose slot has come       -> record the slot (a build)
#include "actors/build_plan.hpp"
#include "actors/read_model.hpp"

#include <chrono>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kiln::domain {

struct create_build_step {
  std::string project;
  build_number_allocated allocation;
};
struct queue_run_step {
  run_key run;
};
struct cancel_run_step {
  run_key run;
};
struct add_runs_step {
  std::string project;
  std::uint32_t build = 0;
  std::string trigger;
  std::string parent_run;  // empty: a build-level chain
  std::vector<std::string> runs;
};
struct complete_build_step {
  std::string project;
  std::uint32_t build = 0;
  kiln::status result = kiln::status::passed;
};
struct mark_offline_step {
  std::string worker;
};
struct lose_run_step {
  run_key run;
  std::string worker;
};
struct time_out_step {
  run_key run;
  std::uint32_t timeout_s = 0;
};

// `fire` false: a trigger seen for the first time starts counting here.
struct cron_slot_step {
  std::string project;
  std::string trigger;
  std::int64_t slot_unix_s = 0;
  bool fire = true;
};

using saga_step = std::variant<create_build_step, queue_run_step, cancel_run_step, add_runs_step,
                               complete_build_step, mark_offline_step, lose_run_step,
                               time_out_step, cron_slot_step>;

// A short stable name for logs and for remembering what is in flight.
std::string describe(const saga_step& s);

// What build `number` of `p` needs next. `layout` is every run the build has
// or should have (plan_existing), from the definition version the build was
// made from; it may be null while the build does not exist yet.
std::vector<saga_step> next_build_steps(const project_summary& p, std::uint32_t number,
                                        const project_definition* def,
                                        const std::vector<planned_run>* layout);

struct watchdog_config {
  std::chrono::nanoseconds worker_timeout = std::chrono::seconds{90};
  std::chrono::nanoseconds run_grace = std::chrono::seconds{60};
};

// Offline workers, lost runs and timed-out runs as of `now_ns`. `last_seen`
// holds each worker's last check-in (heartbeats are not events).
std::vector<saga_step> watchdog_steps(const read_model& model, std::int64_t now_ns,
                                      const std::map<std::string, std::int64_t>& last_seen,
                                      const watchdog_config& config);

// The cron triggers whose latest slot at or before `now_unix_s` is not
// recorded yet. Slots missed while no core ran make one build, for the
// latest of them, not one each (docs/operations.md).
std::vector<saga_step> cron_steps(const read_model& model, std::int64_t now_unix_s);

} // namespace kiln::domain
