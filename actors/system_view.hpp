#pragma once
// Every aggregate's state, folded from the log with the aggregates' own
// apply functions: what `kiln replay` prints, as of any commit.
#include "actors/build_aggregate.hpp"
#include "actors/project_aggregate.hpp"
#include "actors/run_aggregate.hpp"
#include "actors/worker_aggregate.hpp"
#include "events/commit.hpp"

#include <map>
#include <string>

namespace kiln::domain {

struct system_view {
  std::map<std::string, project::state> projects;  // by stream id
  std::map<std::string, build::state> builds;
  std::map<std::string, run::state> runs;
  std::map<std::string, worker::state> workers;
  global_seq seq;               // the last commit folded in
  std::int64_t time_unix_ns = 0;

  // Folds one commit in; commits must come in log order.
  void apply(const logged_commit& c);
};

} // namespace kiln::domain
