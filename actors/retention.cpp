#include "actors/retention.hpp"

namespace kiln::domain {

std::vector<expiring_run> expired_artifacts(const read_model& model, std::int64_t now_ns) {
  std::vector<expiring_run> out;
  for (auto& [name, p] : model.projects()) {
    if (!p.definition || !p.definition->retention.any())
      continue;
    auto& policy = p.definition->retention;
    int newer_completed = 0;  // completed builds numbered above the one at hand
    for (auto it = p.builds.rbegin(); it != p.builds.rend(); ++it) {
      auto& b = it->second;
      if (!b.completed)
        continue;
      auto place = ++newer_completed;
      std::string reason;
      if (policy.keep_builds > 0 && place > policy.keep_builds)
        reason = "build " + std::to_string(b.number) + " is not among the newest "
                 + std::to_string(policy.keep_builds);
      else if (policy.keep_days > 0
               && now_ns - b.completed_ns > std::int64_t{policy.keep_days} * 86'400'000'000'000)
        reason = "build " + std::to_string(b.number) + " ended more than "
                 + std::to_string(policy.keep_days) + " days ago";
      if (reason.empty() || b.pinned)
        continue;
      for (auto& r : b.runs)
        if (r.finished() && r.artifacts > 0 && !r.artifacts_expired)
          out.push_back({{name, b.number, r.name}, reason});
    }
  }
  return out;
}

} // namespace kiln::domain
