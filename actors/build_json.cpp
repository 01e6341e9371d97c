#include "actors/build_json.hpp"

#include <algorithm>

namespace kiln::core {

namespace {

using json = nlohmann::json;

std::int64_t ms(std::int64_t ns) { return ns / 1'000'000; }

json notifications_json(const domain::build_summary& b) {
  auto out = json::array();
  for (auto& [id, n] : b.notifications) {
    auto& st = n.state;
    std::string state = st.delivered   ? "delivered"
                        : st.abandoned ? "given_up"
                        : n.superseded ? "superseded"
                        : st.in_flight ? "sending"
                                       : "pending";
    json j{{"id", id}, {"kind", n.kind}, {"state", state}, {"attempts", st.attempts}};
    if (!n.detail.empty())
      j["detail"] = n.detail;
    if (state == "pending" && st.retry_at_ms > 0)
      j["retry_at_ms"] = st.retry_at_ms;
    out.push_back(std::move(j));
  }
  return out;
}

} // namespace

json run_json(const domain::run_summary& r, const std::string& project, std::uint32_t build) {
  return {{"run_id", domain::run_key{project, build, r.name}.path()},
          {"name", r.name},
          {"status", kiln::to_string(r.status)},
          {"host_tag", r.host_tag},
          {"worker", r.worker},
          {"attempt", r.attempt},
          {"exit_code", r.exit_code},
          {"cancel_requested", r.cancel_requested},
          {"queued_ms", ms(r.queued_ns)},
          {"started_ms", ms(r.started_ns)},
          {"finished_ms", ms(r.finished_ns)},
          {"artifacts_expired", r.artifacts_expired}};
}

json build_json(const domain::build_summary& b, bool with_notifications) {
  auto runs = json::array();
  for (auto& r : b.readable_runs()) {
    auto j = run_json(r, b.project, b.number);
    // Which trigger added it, and from which run (a chained trigger's).
    j["trigger"] = b.facts.trigger;
    j["parent_run"] = "";
    for (auto& added : b.added)
      if (std::find(added.runs.begin(), added.runs.end(), r.name) != added.runs.end()) {
        j["trigger"] = added.trigger;
        j["parent_run"] = added.parent_run;
      }
    runs.push_back(std::move(j));
  }
  json out{{"project", b.project},
           {"build", b.number},
           {"status", kiln::to_string(b.completed ? b.result : kiln::status::running)},
           {"cancelled", b.cancelled},
           {"trigger", b.facts.trigger},
           {"reason", b.facts.reason},
           {"params", b.facts.params},
           {"ref", b.facts.ref},
           {"sha", b.facts.sha},
           {"definition_version", b.facts.definition_version},
           {"priority", b.facts.priority},
           {"rerun_of", b.facts.rerun_of},
           {"created_ms", ms(b.created_ns)},
           {"completed_ms", ms(b.completed_ns)},
           {"pinned", b.pinned},
           {"runs", std::move(runs)}};
  if (b.pinned && !b.pin_name.empty())
    out["promoted_as"] = b.pin_name;
  if (with_notifications)
    out["notifications"] = notifications_json(b);
  return out;
}

} // namespace kiln::core
