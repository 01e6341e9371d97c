#include "actors/scheduler.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <deque>
#include <functional>

namespace kiln::domain {

std::string_view to_string(wait_reason r) {
  switch (r) {
    case wait_reason::synchronous_build: return "synchronous_build";
    case wait_reason::no_worker: return "no_worker";
    case wait_reason::workers_busy: return "workers_busy";
  }
  return "unknown";
}

void in_flight_assignments::add(const assignment& a) {
  if (runs.insert(a.run).second)
    ++per_worker[a.worker];
}

void in_flight_assignments::remove(const run_key& run, const std::string& worker) {
  if (runs.erase(run) == 0)
    return;
  if (auto it = per_worker.find(worker); it != per_worker.end() && --it->second == 0)
    per_worker.erase(it);
}

bool host_tag_matches(std::string_view glob, const worker_summary& w) {
  std::string pattern{glob};
  auto match = [&](const std::string& s) {
    return fnmatch(pattern.c_str(), s.c_str(), FNM_CASEFOLD) == 0;
  };
  return match(w.name) || std::any_of(w.tags.begin(), w.tags.end(), match);
}

namespace {

bool available(const worker_summary& w) { return w.enlisted && w.online && !w.deleted; }

struct slot {
  const worker_summary* worker;
  unsigned free;
};

std::vector<slot> free_slots(const read_model& model, const in_flight_assignments& in_flight,
                             const std::set<std::string>& paused) {
  std::vector<slot> out;
  for (auto& [name, w] : model.workers()) {
    if (!available(w) || paused.count(name))
      continue;
    unsigned used = w.holds.size();
    if (auto it = in_flight.per_worker.find(name); it != in_flight.per_worker.end())
      used += it->second;
    if (used < w.concurrency)
      out.push_back({&w, w.concurrency - used});
  }
  return out;
}

// The oldest build still going, per synchronous project.
std::map<std::string, std::uint32_t> oldest_open(const read_model& model) {
  std::map<std::string, std::uint32_t> out;
  for (auto& [project, number] : model.open_builds()) {
    auto p = model.project(project);
    if (p && p->synchronous())
      out.emplace(project, number);  // the set is ordered: the first is the oldest
  }
  return out;
}

bool blocked_by_older(const std::map<std::string, std::uint32_t>& oldest, const run_key& r) {
  auto it = oldest.find(r.project);
  return it != oldest.end() && it->second < r.build;
}

} // namespace

std::vector<assignment> schedule(const read_model& model, const in_flight_assignments& in_flight,
                                 std::string& last_project, const std::set<std::string>& paused,
                                 const std::vector<incoming_run>& incoming) {
  std::vector<assignment> out;
  auto slots = free_slots(model, in_flight, paused);
  if (slots.empty() || (model.queue().empty() && incoming.empty()))
    return out;
  auto oldest = oldest_open(model);

  struct candidate {
    const run_key* run;
    const std::string* host_tag;
  };
  // priority (high first) -> project -> runs in queue order
  std::map<std::int32_t, std::map<std::string, std::deque<candidate>>, std::greater<>> levels;
  for (auto& [seq, key] : model.queue()) {
    if (in_flight.runs.count(key) || blocked_by_older(oldest, key))
      continue;
    auto b = model.build(key.project, key.build);
    auto r = b ? b->run(key.name) : nullptr;
    if (!r || r->cancel_requested)
      continue;
    levels[b->facts.priority][key.project].push_back({&key, &r->host_tag});
  }
  for (auto& x : incoming)
    if (!in_flight.runs.count(x.run) && !blocked_by_older(oldest, x.run))
      levels[x.priority][x.run.project].push_back({&x.run, &x.host_tag});

  auto place = [&](const candidate& c) -> slot* {
    slot* best = nullptr;
    for (auto& s : slots)
      if (s.free > 0 && host_tag_matches(*c.host_tag, *s.worker) && (!best || s.free > best->free))
        best = &s;
    return best;
  };

  for (auto& [priority, projects] : levels) {
    bool progress = true;
    while (progress) {
      progress = false;
      // One turn per project, starting after the one served last.
      auto start = projects.upper_bound(last_project);
      std::vector<std::map<std::string, std::deque<candidate>>::iterator> order;
      for (auto it = start; it != projects.end(); ++it)
        order.push_back(it);
      for (auto it = projects.begin(); it != start; ++it)
        order.push_back(it);
      for (auto it : order) {
        auto& runs = it->second;
        for (auto r = runs.begin(); r != runs.end(); ++r) {
          if (auto s = place(*r)) {
            out.push_back({*r->run, s->worker->name});
            --s->free;
            runs.erase(r);
            last_project = it->first;
            progress = true;
            break;
          }
        }
      }
      if (std::none_of(slots.begin(), slots.end(), [](auto& s) { return s.free > 0; }))
        return out;
    }
  }
  return out;
}

std::vector<waiting_run> explain_queue(const read_model& model,
                                       const in_flight_assignments& in_flight) {
  std::vector<waiting_run> out;
  auto oldest = oldest_open(model);
  for (auto& [seq, key] : model.queue()) {
    if (in_flight.runs.count(key))
      continue;
    auto r = model.run(key);
    if (!r)
      continue;
    if (blocked_by_older(oldest, key)) {
      out.push_back({key, wait_reason::synchronous_build,
                     "build " + std::to_string(oldest[key.project]) + " is still going"});
      continue;
    }
    bool any = false;
    for (auto& [name, w] : model.workers())
      any = any || (available(w) && host_tag_matches(r->host_tag, w));
    if (any)
      out.push_back({key, wait_reason::workers_busy,
                     "every online worker for '" + r->host_tag + "' is busy"});
    else
      out.push_back({key, wait_reason::no_worker,
                     "no enlisted worker with tag '" + r->host_tag + "' is online"});
  }
  return out;
}

} // namespace kiln::domain
