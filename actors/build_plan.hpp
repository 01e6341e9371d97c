#pragma once
// What a build is made of: the runs a trigger expands into, each with its run
// definition (rundef), and the runs a chained trigger adds. Pure and
// deterministic: the same definition and facts give the same runs, so the
// process manager can re-plan a build after a restart and get what it got
// the first time.
#include "actors/project_definition.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace kiln::domain {

struct planned_run {
  std::string name;
  std::string host_tag;
  std::string loop;     // the loop-on values joined with '-', or empty
  std::string rundef;   // JSON, see docs/events.md; never holds a secret's value
  std::uint32_t timeout_s = 0;
  const trigger_spec* trigger = nullptr;  // point into the definition planned from
  const run_spec* spec = nullptr;
};

// The runs of a new build (only those named in only_runs, when given).
// Error "invalid_definition" when the trigger is gone or names clash.
result<std::vector<planned_run>> plan_build(const project_definition& def,
                                            std::string_view project,
                                            const build_number_allocated& facts);

// The runs chain `chain` adds to build `facts` once `parent` passes (null:
// the whole build passed). Names come from the chain's run-names template.
result<std::vector<planned_run>> plan_chain(const project_definition& def,
                                            const build_created& facts,
                                            const chained_trigger& chain,
                                            const planned_run* parent);

// Every run of a build as it stands: the trigger's runs, then each chain's
// additions in the order they happened. Runs the build never had (only_runs)
// are left out.
result<std::vector<planned_run>> plan_existing(const project_definition& def,
                                               const build_created& facts,
                                               const std::vector<build_runs_added>& added);

} // namespace kiln::domain
