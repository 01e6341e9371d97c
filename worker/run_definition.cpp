#include "worker/run_definition.hpp"

#include <nlohmann/json.hpp>

namespace kiln::worker {

namespace {

using json = nlohmann::json;

std::map<std::string, std::string> string_map(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object())
    return out;
  for (auto& [k, v] : it->items())
    out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return out;
}

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (auto it = j.find(key); it != j.end() && it->is_array())
    for (auto& v : *it)
      if (v.is_string())
        out.push_back(v.get<std::string>());
  return out;
}

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

} // namespace

std::string run_definition::run_id() const {
  return project + "/" + std::to_string(build) + "/" + run;
}

result<run_definition> parse_run_definition(const std::string& json_text) {
  auto j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error{"bad_rundef", "the run definition is not a JSON object"};
  run_definition d;
  d.project = text(j, "project");
  d.run = text(j, "run");
  if (d.project.empty() || d.run.empty())
    return error{"bad_rundef", "the run definition lacks 'project' or 'run'"};
  if (auto b = j.find("build"); b != j.end() && b->is_number_unsigned())
    d.build = b->get<std::uint32_t>();
  else
    return error{"bad_rundef", "the run definition's 'build' is not a number"};
  d.trigger = text(j, "trigger");
  d.parent_run = text(j, "parent_run");
  if (auto t = j.find("timeout_s"); t != j.end() && t->is_number_unsigned())
    d.timeout_s = t->get<std::uint32_t>();
  d.env = string_map(j, "env");
  d.script = text(j, "script");
  if (auto r = j.find("script_repo"); r != j.end() && r->is_object())
    d.script_repo = script_repo_spec{text(*r, "clone_url"), text(*r, "git_ref"),
                                     text(*r, "token_secret"), text(*r, "path")};
  if (d.script_repo && (d.script_repo->clone_url.empty() || d.script_repo->path.empty()))
    return error{"bad_rundef", "the run definition's 'script_repo' lacks 'clone_url' or 'path'"};
  if (d.script.empty() && !d.script_repo)
    return error{"bad_rundef", "the run definition has neither 'script' nor 'script_repo'"};
  if (auto g = j.find("git"); g != j.end() && g->is_object())
    d.git = git_source{text(*g, "url"), text(*g, "sha"), text(*g, "ref"), text(*g, "token_secret")};
  if (auto c = j.find("container"); c != j.end() && c->is_object()) {
    container_spec s;
    s.image = text(*c, "image");
    s.privileged = c->value("privileged", false);
    s.cap_add = strings(*c, "cap_add");
    s.cap_drop = strings(*c, "cap_drop");
    s.user = text(*c, "user");
    s.entrypoint = text(*c, "entrypoint");
    s.auth_secret = text(*c, "auth_secret");
    if (!s.image.empty())
      d.container = std::move(s);
  }
  if (auto g = j.find("test_grepping"); g != j.end() && g->is_object())
    d.grepping = grepping_spec{text(*g, "test_pattern"), text(*g, "result_pattern"),
                               string_map(*g, "fixupdict")};
  d.network = j.value("network", false);
  d.shared_volumes = string_map(j, "shared_volumes");
  d.persistent_volumes = string_map(j, "persistent_volumes");
  d.secrets = string_map(j, "secrets");
  if (auto c = j.find("console_offset"); c != j.end() && c->is_number_unsigned())
    d.console_offset = c->get<std::uint64_t>();
  return d;
}

std::string recreate_stanza(const run_definition& def, const std::string& server_url) {
  auto run_url = server_url + "/v1/projects/" + def.project + "/builds/"
                 + std::to_string(def.build) + "/runs/" + def.run;
  std::string s = "== kiln: run " + def.run_id() + "\n"
                  "== To recreate this run on your machine:\n"
                  "==   curl -fsS -H \"Authorization: Bearer $TOKEN\" -o rundef.json "
                  + run_url + "/rundef\n";
  if (!def.secrets.empty()) {
    s += "==   fill in the secrets in rundef.json (\"secrets\":";
    for (auto& [k, v] : def.secrets)
      s += " " + k;
    s += ")\n";
  }
  s += "==   kiln simulate rundef.json -w /tmp/" + def.run + "\n";
  return s;
}

} // namespace kiln::worker
