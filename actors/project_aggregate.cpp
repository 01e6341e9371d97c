#include "actors/project_aggregate.hpp"

#include "actors/aggregate.hpp"
#include "events/sha256.hpp"
#include "events/utc_time.hpp"

namespace kiln::domain::project {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::invalid_definition: return "invalid_definition";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unknown_trigger: return "unknown_trigger";
    case errc::unknown_version: return "unknown_version";
  }
  return "unknown";
}

std::string content_hash(std::string_view yaml) { return sha256_hex(yaml); }

namespace {

using events = std::vector<event>;

// Secret keys become file names under $SECRETS: keep them plain.
bool valid_secret_key(const std::string& k) {
  return plain_name(k, 128) && k != "." && k != "..";
}

result<events> decide_one(const state& s, const put_definition& c) {
  auto parsed = parse_project_definition(c.yaml);
  if (!parsed)
    return refuse(errc::invalid_definition, parsed.error().message);
  auto hash = content_hash(c.yaml);
  if (s.live() && hash == s.content_sha256)
    return events{};  // the same text again
  events out;
  if (!s.live())
    out.push_back(project_created{c.name});
  out.push_back(project_definition_updated{s.definition_version + 1, c.yaml, hash});
  return out;
}

result<events> decide_one(const state& s, const set_secret& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  if (!valid_secret_key(c.key))
    return refuse(errc::invalid_argument,
                  "a secret key is 1-128 of letters, digits, '-', '_' and '.', not '" + c.key + "'");
  return events{project_secret_set{c.key, c.sealed}};
}

result<events> decide_one(const state& s, const remove_secret& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  if (!s.secrets.count(c.key))
    return refuse(errc::not_found, "no secret '" + c.key + "'");
  return events{project_secret_removed{c.key}};
}

result<events> decide_one(const state& s, const delete_project& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  return events{project_deleted{c.reason}};
}

result<events> decide_one(const state& s, const allocate_build& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  auto version = c.definition_version ? c.definition_version : s.definition_version;
  if (version > s.definition_version)
    return refuse(errc::unknown_version, "project " + s.name + " has no definition version "
                                           + std::to_string(version));
  // An older version's triggers were checked when its build was first made.
  if (version == s.definition_version && (!s.definition || !s.definition->find_trigger(c.trigger)))
    return refuse(errc::unknown_trigger, "project " + s.name + " has no trigger '" + c.trigger + "'");
  return events{build_number_allocated{s.last_build + 1, c.trigger, version, c.params, c.ref,
                                       c.sha, c.reason, c.priority, c.rerun_of, c.only_runs}};
}

const trigger_spec* trigger_of(const state& s, const std::string& name, trigger_type type) {
  auto t = s.definition ? s.definition->find_trigger(name) : nullptr;
  return t && t->type == type ? t : nullptr;
}

result<events> decide_one(const state& s, const record_cron_slot& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  if (!trigger_of(s, c.trigger, trigger_type::cron))
    return refuse(errc::unknown_trigger, "project " + s.name + " has no cron trigger '" + c.trigger + "'");
  if (auto it = s.cron_slots.find(c.trigger); it != s.cron_slots.end() && it->second >= c.slot_unix_s)
    return events{};  // this slot (or a later one) is done
  events out{cron_slot_reached{c.trigger, c.slot_unix_s, c.fire}};
  if (c.fire)
    out.push_back(build_number_allocated{s.last_build + 1, c.trigger, s.definition_version, {}, "", "",
                                         "cron: the slot of " + utc_text(c.slot_unix_s, "%Y-%m-%dT%H:%M:%SZ")});
  return out;
}

result<events> decide_one(const state& s, const record_git_refs& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such project");
  if (!trigger_of(s, c.trigger, trigger_type::git_poller))
    return refuse(errc::unknown_trigger, "project " + s.name + " has no git_poller trigger '" + c.trigger + "'");
  const param_map* seen = nullptr;
  if (auto t = s.git_refs.find(c.trigger); t != s.git_refs.end())
    if (auto u = t->second.find(c.url); u != t->second.end())
      seen = &u->second;
  if (seen && *seen == c.refs)
    return events{};
  events out{git_refs_polled{c.trigger, c.url, c.refs}};
  auto number = s.last_build;
  for (auto& [ref, sha] : c.refs) {
    if (!seen)
      break;  // the first poll of a URL only records what is there
    auto before = seen->find(ref);
    if (before == seen->end() || before->second == sha || c.skip.count(ref))
      continue;
    param_map params{{"GIT_URL", c.url}, {"GIT_REF", ref}, {"GIT_SHA", sha},
                     {"GIT_OLD_SHA", before->second}};
    out.push_back(build_number_allocated{++number, c.trigger, s.definition_version, std::move(params),
                                         ref, sha, "git_poller: " + ref + " moved to " + sha.substr(0, 12)});
  }
  return out;
}

} // namespace

result<std::vector<event>> decide(const state& s, const command& c) {
  return std::visit([&](auto& x) { return decide_one(s, x); }, c);
}

void apply(state& s, const event& e) {
  if (auto x = std::get_if<project_created>(&e)) {
    s.exists = true;
    s.deleted = false;
    s.name = x->name;
  } else if (auto x = std::get_if<project_definition_updated>(&e)) {
    s.definition_version = x->definition_version;
    s.yaml = x->yaml;
    s.content_sha256 = x->content_sha256;
    auto parsed = parse_project_definition(x->yaml);
    s.definition = parsed ? std::make_shared<const project_definition>(std::move(*parsed)) : nullptr;
  } else if (auto x = std::get_if<project_secret_set>(&e)) {
    s.secrets[x->key] = x->ciphertext;
  } else if (auto x = std::get_if<project_secret_removed>(&e)) {
    s.secrets.erase(x->key);
  } else if (std::get_if<project_deleted>(&e)) {
    s.deleted = true;
    s.secrets.clear();
    s.content_sha256.clear();  // a later PUT of the same text recreates it
  } else if (auto x = std::get_if<cron_slot_reached>(&e)) {
    s.cron_slots[x->trigger] = x->slot_unix_s;
  } else if (auto x = std::get_if<git_refs_polled>(&e)) {
    s.git_refs[x->trigger][x->url] = x->refs;
  } else if (auto x = std::get_if<build_number_allocated>(&e)) {
    s.last_build = x->number;
  }
}

} // namespace kiln::domain::project
