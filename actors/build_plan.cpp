#include "actors/build_plan.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kiln::domain {

namespace {

using json = nlohmann::json;

// What every run of one build shares.
struct build_context {
  std::string_view project;
  std::uint32_t number = 0;
  const param_map* params = nullptr;
  std::string_view ref;
  std::string_view sha;
};

bool is_git(trigger_type t) {
  return t == trigger_type::git_poller || t == trigger_type::github_pr
         || t == trigger_type::gitlab_mr;
}

std::uint32_t timeout_of(const project_definition& def, const run_spec& spec) {
  return spec.timeout_seconds.value_or(60 * def.timeout_minutes);
}

// The worker's whole brief for one run. Secrets are not in it: the core adds
// their values when it hands the run to a worker.
std::string make_rundef(const project_definition& def, const build_context& b,
                        const trigger_spec& trigger, const expanded_run& run,
                        const std::string& name, std::string_view parent_run) {
  auto& spec = *run.spec;
  json env = json::object();
  for (auto& [k, v] : run.params)
    env[k] = v;
  env["H_PROJECT"] = b.project;
  env["H_BUILD"] = std::to_string(b.number);
  env["H_RUN"] = name;
  if (!b.sha.empty())
    env["GIT_SHA"] = b.sha;
  if (!b.ref.empty())
    env["GIT_REF"] = b.ref;

  json r;
  r["project"] = b.project;
  r["build"] = b.number;
  r["run"] = name;
  r["trigger"] = trigger.name;
  r["trigger_type"] = to_string(trigger.type);
  r["parent_run"] = parent_run;
  r["host_tag"] = run.host_tag;
  r["timeout_s"] = timeout_of(def, spec);
  r["env"] = std::move(env);
  if (!spec.script.empty()) {
    r["script"] = def.scripts.at(spec.script);
  } else if (spec.script_repo) {
    auto& repo = def.script_repos.at(spec.script_repo->name);
    r["script_repo"] = {{"clone_url", repo.clone_url}, {"git_ref", repo.git_ref},
                        {"token_secret", repo.token}, {"path", spec.script_repo->path}};
  }
  if (is_git(trigger.type)) {
    auto url = run.params.find("GIT_URL");
    if (url != run.params.end())
      r["git"] = {{"url", url->second}, {"sha", b.sha}, {"ref", b.ref},
                  {"token_secret", trigger.git_token}};
  }
  if (!spec.container.empty()) {
    r["container"] = {{"image", spec.container},       {"privileged", spec.privileged},
                      {"cap_add", spec.cap_add},       {"cap_drop", spec.cap_drop},
                      {"user", spec.container_user},   {"entrypoint", spec.container_entrypoint},
                      {"auth_secret", spec.container_auth}};
  }
  if (spec.grepping) {
    r["test_grepping"] = {{"test_pattern", spec.grepping->test_pattern},
                          {"result_pattern", spec.grepping->result_pattern},
                          {"fixupdict", spec.grepping->fixupdict}};
  }
  if (!spec.progress_pattern.empty())
    r["console_progress"] = spec.progress_pattern;
  r["persistent_volumes"] = spec.persistent_volumes;
  r["shared_volumes"] = spec.shared_volumes;
  r["network"] = spec.network;
  return r.dump();
}

error plan_error(std::string message) { return {"invalid_definition", std::move(message)}; }

result<std::vector<planned_run>> plan_trigger(const project_definition& def, const build_context& b,
                                              std::string_view trigger_name,
                                              const std::vector<std::string>& only) {
  auto trigger = def.find_trigger(trigger_name);
  if (!trigger)
    return plan_error("the definition has no trigger '" + std::string{trigger_name} + "'");
  auto runs = expand_trigger(def, *trigger, *b.params);
  if (!runs)
    return runs.error();
  std::vector<planned_run> out;
  for (auto& r : *runs) {
    if (!only.empty() && std::find(only.begin(), only.end(), r.name) == only.end())
      continue;
    out.push_back({r.name, r.host_tag, r.loop, make_rundef(def, b, *trigger, r, r.name, {}),
                   timeout_of(def, *r.spec), trigger, r.spec});
  }
  return out;
}

result<std::vector<planned_run>> plan_chain(const project_definition& def, const build_context& b,
                                            const chained_trigger& chain,
                                            const planned_run* parent) {
  auto trigger = def.find_trigger(chain.name);
  if (!trigger)
    return plan_error("the definition has no trigger '" + chain.name + "' to chain");
  auto runs = expand_trigger(def, *trigger, *b.params);
  if (!runs)
    return runs.error();
  std::string parent_loop = parent ? parent->loop : std::string{};
  std::string parent_name = parent ? parent->name : std::string{};
  std::vector<planned_run> out;
  for (auto& r : *runs) {
    auto name = replace_all(replace_all(chain.run_names, "{name}", r.name), "{loop}", parent_loop);
    out.push_back({name, r.host_tag, r.loop, make_rundef(def, b, *trigger, r, name, parent_name),
                   timeout_of(def, *r.spec), trigger, r.spec});
  }
  return out;
}

build_context context_of(const build_created& f) {
  return {f.project, f.number, &f.params, f.ref, f.sha};
}

} // namespace

result<std::vector<planned_run>> plan_build(const project_definition& def,
                                            std::string_view project,
                                            const build_number_allocated& facts) {
  return plan_trigger(def, {project, facts.number, &facts.params, facts.ref, facts.sha},
                      facts.trigger, facts.only_runs);
}

result<std::vector<planned_run>> plan_chain(const project_definition& def,
                                            const build_created& facts,
                                            const chained_trigger& chain,
                                            const planned_run* parent) {
  return plan_chain(def, context_of(facts), chain, parent);
}

result<std::vector<planned_run>> plan_existing(const project_definition& def,
                                               const build_created& facts,
                                               const std::vector<build_runs_added>& added) {
  auto b = context_of(facts);
  auto runs = plan_trigger(def, b, facts.trigger, facts.runs);
  if (!runs)
    return runs;
  auto build_trigger = def.find_trigger(facts.trigger);
  for (auto& a : added) {
    const planned_run* parent = nullptr;
    const std::vector<chained_trigger>* chains = &build_trigger->triggers;
    if (!a.parent_run.empty()) {
      auto it = std::find_if(runs->begin(), runs->end(),
                             [&](auto& r) { return r.name == a.parent_run; });
      if (it == runs->end())
        return plan_error("run '" + a.parent_run + "' is not in build "
                          + std::to_string(facts.number));
      parent = &*it;
      chains = &it->spec->triggers;
    }
    auto chain = std::find_if(chains->begin(), chains->end(),
                              [&](auto& c) { return c.name == a.trigger; });
    if (chain == chains->end())
      return plan_error("no chained trigger '" + a.trigger + "' where the build added runs");
    auto more = plan_chain(def, b, *chain, parent);
    if (!more)
      return more;
    for (auto& r : *more)
      if (std::find(a.runs.begin(), a.runs.end(), r.name) != a.runs.end())
        runs->push_back(std::move(r));  // invalidates `parent`: used no more
  }
  return runs;
}

} // namespace kiln::domain
