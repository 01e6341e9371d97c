#pragma once
// A run definition (rundef) as a worker receives it from a check-in, or
// `kiln simulate` reads it from a file: everything needed to run one run,
// with no server. The JSON layout is written by actors/build_plan.cpp.
#include "events/result.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::worker {

struct git_source {
  std::string url;
  std::string sha;
  std::string ref;
  std::string token_secret;  // the trigger's git-token: a secret's name
};

// `script-repo`: the script is a file in another repository.
struct script_repo_spec {
  std::string clone_url;
  std::string git_ref;
  std::string token_secret;  // a secret's name; its value authenticates the clone
  std::string path;          // the script, inside the clone
};

struct container_spec {
  std::string image;
  bool privileged = false;
  std::vector<std::string> cap_add, cap_drop;
  std::string user, entrypoint, auth_secret;
};

struct grepping_spec {
  std::string test_pattern;
  std::string result_pattern;
  std::map<std::string, std::string> fixupdict;
};

struct run_definition {
  std::string project;
  std::uint32_t build = 0;
  std::string run;
  std::string trigger;
  std::string parent_run;  // the run whose success chained this one
  std::uint32_t timeout_s = 300;
  std::map<std::string, std::string> env;  // params, layered by the core
  std::string script;
  std::optional<git_source> git;
  std::optional<container_spec> container;
  std::optional<grepping_spec> grepping;
  bool network = false;  // kiln extension `network: true`
  std::map<std::string, std::string> shared_volumes;
  std::map<std::string, std::string> persistent_volumes;
  std::map<std::string, std::string> secrets;  // key -> value; never logged
  std::optional<script_repo_spec> script_repo;
  // Where this attempt's console starts: after what a lost attempt sent.
  std::uint64_t console_offset = 0;

  std::string run_id() const;  // "project/build/run"
};

// Refuses a rundef that lacks what a run needs, naming the field.
result<run_definition> parse_run_definition(const std::string& json_text);

// The lines every console log begins with: how to run this run again on
// one's own machine.
std::string recreate_stanza(const run_definition& def, const std::string& server_url);

} // namespace kiln::worker
