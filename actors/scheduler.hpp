#pragma once
// Which queued run goes to which worker. Pure: it reads the model and the
// assignments still in flight and returns a plan; the core turns the plan
// into assign_run commands (the run aggregate refuses a second assignment,
// so a plan made twice cannot assign a run twice).
//
// Rules, in order:
//  - a run goes only to an enlisted, online worker whose tags or name match
//    its host-tag glob (case-insensitive), never beyond its concurrency;
//  - a build of a `synchronous-builds` project waits for older builds;
//  - higher build priority first;
//  - within a priority, projects take turns (round robin from the one after
//    the project served last), so a project with 500 queued runs cannot
//    starve one with 1; within a project, queue order (FIFO).
#include "actors/read_model.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln::domain {

struct assignment {
  run_key run;
  std::string worker;
};

enum class wait_reason {
  synchronous_build,  // an older build of the project is still going
  no_worker,          // no enlisted, online worker carries the host tag
  workers_busy,       // matching workers are all at their concurrency
};
std::string_view to_string(wait_reason r);

struct waiting_run {
  run_key run;
  wait_reason reason;
  std::string detail;  // for people: which tag, which build
};

// Assignments sent but not yet seen in the model.
struct in_flight_assignments {
  std::set<run_key> runs;
  std::map<std::string, unsigned> per_worker;

  void add(const assignment& a);
  void remove(const run_key& run, const std::string& worker);
};

// A run its build is queueing now, not yet in the model's queue: planned
// with the queue, after every run already in it, so that it can be queued
// and assigned in one commit.
struct incoming_run {
  run_key run;
  std::string host_tag;
  std::int32_t priority = 0;  // its build's
};

// `last_project` carries the round robin from one call to the next.
// `paused`: workers that said at their last check-in that they take no new
// runs (draining, low on disk); not events, like heartbeats.
std::vector<assignment> schedule(const read_model& model, const in_flight_assignments& in_flight,
                                 std::string& last_project,
                                 const std::set<std::string>& paused = {},
                                 const std::vector<incoming_run>& incoming = {});

// Why each queued run (in queue order) is still waiting.
std::vector<waiting_run> explain_queue(const read_model& model,
                                       const in_flight_assignments& in_flight);

// The host-tag glob against the worker's tags and name, case-insensitive.
bool host_tag_matches(std::string_view glob, const worker_summary& w);

} // namespace kiln::domain
