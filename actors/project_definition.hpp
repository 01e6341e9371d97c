#pragma once
// A project's definition in JobServ's YAML format (shared/jobserv-format.md),
// parsed and validated. Every error names the line and column (1-based).
#include "events/event.hpp"
#include "events/result.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::domain {

class cron_schedule;

// Where something stood in the YAML text, for error messages.
struct source_mark {
  int line = 0;
  int column = 0;
};

struct loop_param {
  std::string param;
  std::vector<std::string> values;
};

// A chain: when the owner (a run, or the whole build) passes, the runs of
// trigger `name` are added to the same build under the names `run_names`
// makes (template: {name} the chained run's name, {loop} the owner's loop).
struct chained_trigger {
  std::string name;
  std::string run_names;
  source_mark at;
};

struct script_repo_ref {
  std::string name;
  std::string path;
};

struct test_grepping {
  std::string test_pattern;
  std::string result_pattern;
  std::map<std::string, std::string> fixupdict;
};

struct run_spec {
  std::string name;  // may hold {loop}
  std::string host_tag;
  std::string container;  // empty: no image
  std::string script;     // a key of project_definition::scripts, or empty
  std::optional<script_repo_ref> script_repo;
  // kiln extension: minutes ("5"), or seconds with an "s" ("90s").
  std::optional<int> timeout_seconds;
  param_map params;
  std::vector<loop_param> loop_on;
  std::vector<chained_trigger> triggers;
  std::optional<test_grepping> grepping;
  std::string progress_pattern;
  std::map<std::string, std::string> persistent_volumes;
  std::map<std::string, std::string> shared_volumes;
  bool privileged = false;
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  std::string container_user;
  std::string container_entrypoint;
  std::string container_auth;
  bool network = false;  // kiln extension: the sandbox gets the network
  source_mark at;
};

enum class trigger_type { simple, git_poller, github_pr, gitlab_mr, cron, webhook };
std::string_view to_string(trigger_type t);

struct notify_email {
  std::string users;  // addresses, comma or space separated
  bool only_failures = false;
  // kiln extension: only when the outcome differs from the trigger's last
  // build (the first failure, the first success after failures).
  bool on_change = false;
};

struct notify_webhook {
  std::string url;
  std::string secret_name;
  bool only_failures = false;
};

struct trigger_spec {
  std::string name;
  trigger_type type = trigger_type::simple;
  param_map params;
  std::vector<run_spec> runs;
  std::vector<chained_trigger> triggers;  // build-level chain
  std::optional<notify_email> email;
  std::vector<notify_webhook> webhooks;
  int poll_interval_s = 60;    // git_poller (kiln extension)
  std::string schedule;        // cron (kiln extension)
  std::shared_ptr<const cron_schedule> cron;  // `schedule` parsed (and its zone read) once
  std::string webhook_secret;  // names the secret that keys signed webhooks
  std::string git_token;       // names the secret that authenticates git over HTTPS
  source_mark at;
};

struct script_repo {
  std::string clone_url;
  std::string git_ref;
  std::string token;  // names a secret
};

// kiln extension: how long builds keep their artifacts. A build's go when
// it is more than keep_days old or not among the newest keep_builds
// (either limit); pinned builds keep theirs. 0: no limit.
struct retention_policy {
  int keep_days = 0;
  int keep_builds = 0;
  bool any() const { return keep_days > 0 || keep_builds > 0; }
};

struct project_definition {
  int timeout_minutes = 0;
  std::string description;
  param_map params;
  std::map<std::string, std::string> scripts;
  std::map<std::string, script_repo> script_repos;
  std::optional<notify_email> email;
  std::vector<notify_webhook> webhooks;
  std::vector<trigger_spec> triggers;
  bool synchronous_builds = false;  // a newer build waits for the older to finish
  retention_policy retention;

  const trigger_spec* find_trigger(std::string_view name) const;
};

// Every `from` in `s` replaced by `to`: the {loop} and {name} templates.
std::string replace_all(std::string s, std::string_view from, std::string_view to);

// Parses and validates. Error code "invalid_definition"; the message starts
// with "line L, column C: ".
result<project_definition> parse_project_definition(std::string_view yaml);

// One run of a build, after loop-on expansion: its final name and
// environment. `loop` is the loop values joined with '-', or empty.
struct expanded_run {
  std::string name;
  std::string host_tag;
  std::string loop;
  param_map params;  // project < trigger < run < loop values < build params
  const run_spec* spec = nullptr;
};

// The runs a trigger makes, with the params given when the build was
// triggered layered on top. Error "invalid_definition" when two names clash.
result<std::vector<expanded_run>> expand_trigger(const project_definition& def,
                                                 const trigger_spec& trigger,
                                                 const param_map& build_params);

// A list parameter as JobServ projects write them (GIT_URL, GIT_POLL_REFS,
// GH_BRANCH): items separated by whitespace and/or commas.
std::vector<std::string> split_list_param(std::string_view text);

} // namespace kiln::domain
