#include "actors/process_manager.hpp"

#include "actors/build_aggregate.hpp"
#include "actors/cron_schedule.hpp"

#include <algorithm>

namespace kiln::domain {

namespace {

const planned_run* find(const std::vector<planned_run>& layout, std::string_view name) {
  for (auto& r : layout)
    if (r.name == name)
      return &r;
  return nullptr;
}

bool fired(const build_summary& b, std::string_view trigger, std::string_view parent) {
  return std::any_of(b.added.begin(), b.added.end(), [&](const build_runs_added& a) {
    return a.trigger == trigger && a.parent_run == parent;
  });
}

std::optional<add_runs_step> chain_step(const build_summary& b, const project_definition& def,
                                        const chained_trigger& chain, const planned_run* parent) {
  auto runs = plan_chain(def, b.facts, chain, parent);
  if (!runs)
    return std::nullopt;
  add_runs_step step{b.project, b.number, chain.name, parent ? parent->name : std::string{}, {}};
  for (auto& r : *runs)
    step.runs.push_back(r.name);
  return step;
}

} // namespace

std::string describe(const saga_step& s) {
  struct {
    std::string operator()(const create_build_step& x) {
      return "create_build " + x.project + "/" + std::to_string(x.allocation.number);
    }
    std::string operator()(const queue_run_step& x) { return "queue_run " + x.run.path(); }
    std::string operator()(const cancel_run_step& x) { return "cancel_run " + x.run.path(); }
    std::string operator()(const add_runs_step& x) {
      return "add_runs " + x.project + "/" + std::to_string(x.build) + " " + x.trigger + " after '"
             + x.parent_run + "'";
    }
    std::string operator()(const complete_build_step& x) {
      return "complete_build " + x.project + "/" + std::to_string(x.build);
    }
    std::string operator()(const mark_offline_step& x) { return "mark_offline " + x.worker; }
    std::string operator()(const lose_run_step& x) { return "lose_run " + x.run.path(); }
    std::string operator()(const time_out_step& x) { return "time_out " + x.run.path(); }
    std::string operator()(const cron_slot_step& x) {
      return "cron_slot " + x.project + " " + x.trigger + " " + std::to_string(x.slot_unix_s);
    }
  } name;
  return std::visit(name, s);
}

std::vector<saga_step> next_build_steps(const project_summary& p, std::uint32_t number,
                                        const project_definition* def,
                                        const std::vector<planned_run>* layout) {
  std::vector<saga_step> out;
  if (auto a = p.allocated.find(number); a != p.allocated.end()) {
    out.push_back(create_build_step{p.name, a->second});
    return out;
  }
  auto it = p.builds.find(number);
  if (it == p.builds.end() || it->second.completed)
    return out;
  auto& b = it->second;

  if (b.cancelled) {
    bool all_done = true;
    for (auto& r : b.runs) {
      if (r.finished())
        continue;
      all_done = false;
      if (!r.cancel_requested)
        out.push_back(cancel_run_step{{p.name, number, r.name}});
    }
    if (all_done)
      out.push_back(complete_build_step{p.name, number, kiln::status::cancelled});
    return out;
  }

  for (auto& name : b.run_names())
    if (!b.run(name))
      out.push_back(queue_run_step{{p.name, number, name}});
  if (!out.empty())
    return out;

  // Run-level chains of runs that passed.
  if (def && layout)
    for (auto& r : b.runs) {
      if (r.status != kiln::status::passed)
        continue;
      auto planned = find(*layout, r.name);
      if (!planned)
        continue;
      for (auto& chain : planned->spec->triggers)
        if (!fired(b, chain.name, r.name))
          if (auto step = chain_step(b, *def, chain, planned))
            out.push_back(std::move(*step));
    }
  if (!out.empty())
    return out;

  std::vector<kiln::status> statuses;
  for (auto& r : b.runs)
    statuses.push_back(r.status);
  auto result = build::outcome(false, statuses);
  if (result == kiln::status::running)
    return out;
  if (statuses.empty())
    result = kiln::status::failed;  // it ran nothing: it did not pass
  if (result == kiln::status::passed && def) {
    if (auto trigger = def->find_trigger(b.facts.trigger))
      for (auto& chain : trigger->triggers)
        if (!fired(b, chain.name, ""))
          if (auto step = chain_step(b, *def, chain, nullptr))
            out.push_back(std::move(*step));
    if (!out.empty())
      return out;
  }
  out.push_back(complete_build_step{p.name, number, result});
  return out;
}

std::vector<saga_step> watchdog_steps(const read_model& model, std::int64_t now_ns,
                                      const std::map<std::string, std::int64_t>& last_seen,
                                      const watchdog_config& config) {
  std::vector<saga_step> out;
  for (auto& [name, w] : model.workers()) {
    if (w.online) {
      auto seen = last_seen.find(name);
      if (seen == last_seen.end() || now_ns - seen->second > config.worker_timeout.count())
        out.push_back(mark_offline_step{name});
      continue;
    }
    for (auto& r : w.holds)
      out.push_back(lose_run_step{r, name});
  }
  for (auto& [project, number] : model.open_builds()) {
    auto b = model.build(project, number);
    if (!b)
      continue;
    for (auto& r : b->runs) {
      if (r.status != kiln::status::running || r.timeout_s == 0)
        continue;
      auto limit = r.started_ns + std::int64_t{r.timeout_s} * 1'000'000'000
                   + config.run_grace.count();
      if (now_ns > limit)
        out.push_back(time_out_step{{project, number, r.name}, r.timeout_s});
    }
  }
  return out;
}

std::vector<saga_step> cron_steps(const read_model& model, std::int64_t now_unix_s) {
  std::vector<saga_step> out;
  for (auto& [name, p] : model.projects()) {
    if (p.deleted || !p.definition)
      continue;
    for (auto& t : p.definition->triggers) {
      if (t.type != trigger_type::cron || !t.cron)
        continue;
      auto due = t.cron->last_at_or_before(now_unix_s);
      auto last = p.cron_slots.find(t.name);
      if (due < 0 || (last != p.cron_slots.end() && last->second >= due))
        continue;
      out.push_back(cron_slot_step{name, t.name, due, last != p.cron_slots.end()});
    }
  }
  return out;
}

} // namespace kiln::domain
