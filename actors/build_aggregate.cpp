#include "actors/build_aggregate.hpp"

#include "actors/aggregate.hpp"

#include <algorithm>
#include <set>

namespace kiln::domain::build {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::not_due: return "not_due";
    case errc::finished: return "finished";
    case errc::duplicate_run: return "duplicate_run";
    case errc::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

namespace {

using events = std::vector<event>;

bool unique(const std::vector<std::string>& names) {
  return std::set<std::string>(names.begin(), names.end()).size() == names.size();
}

result<events> decide_one(const state& s, const create_build& c) {
  if (s.exists)
    return refuse(errc::already_exists, "build " + std::to_string(c.facts.number) + " exists");
  if (c.facts.runs.empty() || !unique(c.facts.runs))
    return refuse(errc::invalid_argument, "a build needs runs with unique names");
  return events{c.facts};
}

result<events> decide_one(const state& s, const add_runs& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  if (s.completed || s.cancelled)
    return refuse(errc::finished, "the build is over");
  if (c.runs.empty() || !unique(c.runs))
    return refuse(errc::invalid_argument, "added runs need unique names");
  for (auto& r : c.runs)
    if (std::find(s.runs.begin(), s.runs.end(), r) != s.runs.end())
      return refuse(errc::duplicate_run, "run '" + r + "' is already in the build");
  return events{build_runs_added{c.trigger, c.parent_run, c.runs}};
}

result<events> decide_one(const state& s, const cancel_build& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  if (s.completed)
    return refuse(errc::finished, "the build is over");
  if (s.cancelled)
    return events{};
  return events{build_cancelled{c.reason}};
}

result<events> decide_one(const state& s, const complete_build& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  if (s.completed)
    return s.result == c.status ? result<events>{events{}}
                                : refuse(errc::finished, "the build is over");
  if (c.status != kiln::status::passed && c.status != kiln::status::failed
      && c.status != kiln::status::cancelled)
    return refuse(errc::invalid_argument, "a build completes PASSED, FAILED or CANCELLED");
  events out{build_completed{c.status}};
  for (auto& n : c.notifications) {
    if (n.id.empty() || n.id.starts_with("status/"))
      return refuse(errc::invalid_argument, "a planned notification needs an id of its own");
    out.push_back(n);
  }
  return out;
}

bool is_status(const std::string& id) { return id.starts_with("status/"); }

result<events> decide_one(const state& s, const start_notification& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  auto it = s.notifications.find(c.id);
  if (it == s.notifications.end() && !is_status(c.id))
    return refuse(errc::not_found, "no notification '" + c.id + "' is planned");
  notification_state n = it == s.notifications.end() ? notification_state{} : it->second;
  if (n.settled())
    return refuse(errc::not_due, "notification '" + c.id + "' is settled");
  if (n.in_flight && c.now_ms < n.lease_until_ms)
    return refuse(errc::not_due, "notification '" + c.id + "' is under way");
  if (!n.in_flight && c.now_ms < n.retry_at_ms)
    return refuse(errc::not_due, "notification '" + c.id + "' waits to be retried");
  return events{notification_started{c.id, n.attempts + 1, c.now_ms + c.lease_ms}};
}

result<events> decide_one(const state& s, const finish_notification& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  auto it = s.notifications.find(c.id);
  if (it == s.notifications.end() || it->second.attempts != c.attempt)
    return refuse(errc::not_due, "attempt " + std::to_string(c.attempt) + " of notification '"
                                   + c.id + "' is not the latest");
  if (!it->second.in_flight)
    return it->second.delivered == c.delivered ? result<events>{events{}}
           : refuse(errc::not_due, "attempt " + std::to_string(c.attempt) + " is finished");
  return events{notification_finished{c.id, c.attempt, c.delivered, c.detail,
                                      c.delivered ? 0 : c.retry_at_ms}};
}

result<events> decide_one(const state& s, const pin_build& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  if (s.pinned && s.pin_name == c.name)
    return events{};
  return events{build_pinned{c.name, c.reason}};
}

result<events> decide_one(const state& s, const unpin_build& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such build");
  if (!s.pinned)
    return events{};
  return events{build_unpinned{c.reason}};
}

} // namespace

result<std::vector<event>> decide(const state& s, const command& c) {
  return std::visit([&](auto& x) { return decide_one(s, x); }, c);
}

void apply(state& s, const event& e) {
  if (auto x = std::get_if<build_created>(&e)) {
    s = state{};
    s.exists = true;
    s.created = *x;
    s.runs = x->runs;
  } else if (auto x = std::get_if<build_runs_added>(&e)) {
    s.runs.insert(s.runs.end(), x->runs.begin(), x->runs.end());
  } else if (std::get_if<build_cancelled>(&e)) {
    s.cancelled = true;
  } else if (auto x = std::get_if<build_completed>(&e)) {
    s.completed = true;
    s.result = x->status;
  } else if (auto x = std::get_if<build_pinned>(&e)) {
    s.pinned = true;
    s.pin_name = x->name;
  } else if (std::get_if<build_unpinned>(&e)) {
    s.pinned = false;
    s.pin_name.clear();
  } else if (auto x = std::get_if<notification_planned>(&e)) {
    s.notifications[x->id];
  } else if (auto x = std::get_if<notification_started>(&e)) {
    fold(s.notifications[x->id], e);
  } else if (auto x = std::get_if<notification_finished>(&e)) {
    fold(s.notifications[x->id], e);
  }
}

void fold(notification_state& n, const event& e) {
  if (auto x = std::get_if<notification_started>(&e)) {
    n.attempts = x->attempt;
    n.lease_until_ms = x->lease_until_ms;
    n.in_flight = true;
  } else if (auto x = std::get_if<notification_finished>(&e); x && x->attempt == n.attempts) {
    n.in_flight = false;
    n.delivered = x->delivered;
    n.abandoned = !x->delivered && x->retry_at_ms == 0;
    n.retry_at_ms = x->retry_at_ms;
  }
}

kiln::status outcome(bool cancelled, const std::vector<kiln::status>& runs) {
  bool all_passed = true;
  for (auto r : runs) {
    if (r == kiln::status::queued || r == kiln::status::running || r == kiln::status::lost)
      return kiln::status::running;
    all_passed = all_passed && r == kiln::status::passed;
  }
  if (cancelled)
    return kiln::status::cancelled;
  return all_passed ? kiln::status::passed : kiln::status::failed;
}

} // namespace kiln::domain::build
