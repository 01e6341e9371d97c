#pragma once
// The project aggregate, pure. A project holds its definition (versioned
// YAML), its sealed secrets, and the counter that numbers its builds.
//
//   ∅ ──put_definition──> LIVE ──delete──> DELETED ──put_definition──> LIVE
//                         │  ▲
//                         └──┘ put_definition (new text: new version;
//                              same text: nothing), set/remove secret,
//                              allocate_build (1, 2, 3… never reused)
#include "actors/project_definition.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <map>
#include <set>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::project {

enum class errc {
  not_found,           // no such project (or it was deleted)
  invalid_definition,  // the YAML failed to parse or validate (line, column)
  invalid_argument,    // e.g. a bad secret key
  unknown_trigger,     // allocate_build names no trigger of the definition
  unknown_version,     // allocate_build names a definition version that never was
};
std::string_view to_string(errc e);

struct state {
  bool exists = false;
  bool deleted = false;
  std::string name;
  std::uint32_t definition_version = 0;
  std::string yaml;
  std::string content_sha256;
  // `yaml` parsed (by apply: the text was validated when it was stored).
  std::shared_ptr<const project_definition> definition;
  std::map<std::string, std::string> secrets;  // key -> sealed value
  std::uint32_t last_build = 0;
  // Triggers that start builds by themselves (issue 7): the last cron slot
  // recorded per trigger, and per git_poller trigger and URL the refs seen.
  std::map<std::string, std::int64_t> cron_slots;
  std::map<std::string, std::map<std::string, param_map>> git_refs;

  bool live() const { return exists && !deleted; }
};

// ---- commands ----
struct put_definition {
  std::string name;
  std::string yaml;
};
struct set_secret {
  std::string key;
  std::string sealed;  // sealed by the host before deciding: decide stays pure
};
struct remove_secret {
  std::string key;
};
struct delete_project {
  std::string reason;
};
// Numbers a new build and records what it is made of. definition_version 0
// means the current definition; a rerun names its original build's version
// (and, for failed-only, the runs to make again).
struct allocate_build {
  std::string trigger;
  param_map params;
  std::string ref;
  std::string sha;
  std::string reason;
  std::int32_t priority = 0;
  std::uint32_t definition_version = 0;
  std::uint32_t rerun_of = 0;
  std::vector<std::string> only_runs;
};

// A cron trigger's slot has come (the core's process manager sends it).
// `fire` false records where a new trigger starts counting, with no build.
// A slot at or before the last recorded one decides nothing.
struct record_cron_slot {
  std::string trigger;
  std::int64_t slot_unix_s = 0;
  bool fire = true;
};
// What a poll of one URL of a git_poller trigger saw: each matching ref's
// sha. A ref seen before whose sha changed makes a build (GIT_REF,
// GIT_SHA, GIT_OLD_SHA), unless it is in `skip` (its head commit asked
// for it with [skip ci]); a ref seen for the first time is only recorded.
// Nothing changed: no events, so several cores may poll the same URL.
struct record_git_refs {
  std::string trigger;
  std::string url;
  param_map refs;
  std::set<std::string> skip;
};

using command = std::variant<put_definition, set_secret, remove_secret, delete_project,
                             allocate_build, record_cron_slot, record_git_refs>;

result<std::vector<event>> decide(const state& s, const command& c);
void apply(state& s, const event& e);

// Hex SHA-256 of the definition text (what ProjectDefinitionUpdated records).
std::string content_hash(std::string_view yaml);

} // namespace kiln::domain::project
