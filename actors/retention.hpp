#pragma once
// Retention (issue 8), pure: which finished runs' artifacts a project's
// `retention:` policy says to delete now. A build's go once it has been
// complete for more than keep-days, or once it is not among the project's
// newest keep-builds completed builds; pinned (promoted) builds and open
// ones keep theirs. The sweeper (retention_sweeper.hpp) deletes and records.
#include "actors/read_model.hpp"

#include <string>
#include <vector>

namespace kiln::domain {

struct expiring_run {
  run_key run;
  std::string reason;
};

std::vector<expiring_run> expired_artifacts(const read_model& model, std::int64_t now_ns);

} // namespace kiln::domain
