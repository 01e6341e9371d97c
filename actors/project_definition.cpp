#include "actors/project_definition.hpp"

#include "actors/cron_schedule.hpp"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <initializer_list>
#include <set>

namespace kiln::domain {

std::string_view to_string(trigger_type t) {
  switch (t) {
    case trigger_type::simple: return "simple";
    case trigger_type::git_poller: return "git_poller";
    case trigger_type::github_pr: return "github_pr";
    case trigger_type::gitlab_mr: return "gitlab_mr";
    case trigger_type::cron: return "cron";
    case trigger_type::webhook: return "webhook";
  }
  return "unknown";
}

const trigger_spec* project_definition::find_trigger(std::string_view name) const {
  for (auto& t : triggers)
    if (t.name == name)
      return &t;
  return nullptr;
}

namespace {

// Thrown inside this file only; parse_project_definition turns it into an error value.
struct invalid {
  source_mark at;
  std::string message;
};

source_mark mark_of(const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null())
    return {0, 0};
  return {m.line + 1, m.column + 1};
}

[[noreturn]] void fail(source_mark at, std::string message) {
  throw invalid{at, std::move(message)};
}

[[noreturn]] void fail(const YAML::Node& n, std::string message) {
  fail(mark_of(n), std::move(message));
}

const char* kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a value";
    case YAML::NodeType::Null: return "empty";
    case YAML::NodeType::Undefined: return "missing";
  }
  return "unknown";
}

std::string scalar(const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar())
    fail(n, what + " must be a value, not " + kind_of(n));
  return n.Scalar();
}

int positive_int(const YAML::Node& n, const std::string& what) {
  auto s = scalar(n, what);
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v <= 0)
    fail(n, what + " must be a whole number above 0, not '" + s + "'");
  return v;
}

bool boolean(const YAML::Node& n, const std::string& what) {
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
    fail(n, what + " must be true or false");
  return v;
}

// A map with a fixed set of keys: unknown and duplicate keys are errors
// (yaml-cpp would silently keep the first of two duplicates).
class map_reader {
 public:
  map_reader(const YAML::Node& node, std::string what, std::initializer_list<const char*> allowed)
    : node_(node), what_(std::move(what)) {
    if (!node.IsMap())
      fail(node, what_ + " must be a map, not " + kind_of(node));
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      auto key = scalar(it->first, "a key in " + what_);
      bool known = false;
      for (auto a : allowed)
        known = known || key == a;
      if (!known)
        fail(it->first, "unknown key '" + key + "' in " + what_);
      if (!seen.insert(key).second)
        fail(it->first, "duplicate key '" + key + "' in " + what_);
    }
  }

  // An absent key (or one with no value) gives an undefined/null node.
  YAML::Node get(const char* key) const { return node_[key]; }
  bool has(const char* key) const {
    auto n = node_[key];
    return n.IsDefined() && !n.IsNull();
  }
  YAML::Node require(const char* key) const {
    if (!has(key))
      // A missing key has no position of its own: point at the map.
      fail(node_, what_ + " needs '" + key + "'");
    return node_[key];
  }
  std::string string_or(const char* key, std::string fallback) const {
    return has(key) ? scalar(get(key), std::string{"'"} + key + "' in " + what_) : fallback;
  }
  const std::string& what() const { return what_; }
  source_mark at() const { return mark_of(node_); }

 private:
  YAML::Node node_;
  std::string what_;
};

// name -> text maps: params, scripts, volumes. Values may be numbers or
// booleans in YAML; they are environment strings here.
std::map<std::string, std::string> string_map(const YAML::Node& n, const std::string& what) {
  std::map<std::string, std::string> out;
  if (n.IsNull())
    return out;
  if (!n.IsMap())
    fail(n, what + " must be a map, not " + kind_of(n));
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto key = scalar(it->first, "a key in " + what);
    auto value = it->second.IsNull() ? std::string{} : scalar(it->second, "'" + key + "' in " + what);
    if (!out.emplace(key, value).second)
      fail(it->first, "duplicate key '" + key + "' in " + what);
  }
  return out;
}

std::vector<std::string> string_list(const YAML::Node& n, const std::string& what) {
  std::vector<std::string> out;
  if (!n.IsSequence())
    fail(n, what + " must be a list, not " + kind_of(n));
  for (auto x : n)
    out.push_back(scalar(x, "an item of " + what));
  return out;
}

void check_regex(const YAML::Node& n, const std::string& pattern, const std::string& what) {
  RE2 re{pattern, RE2::Quiet};
  if (!re.ok())
    fail(n, what + " is not a valid regular expression: " + re.error());
}

notify_email read_email(const YAML::Node& n, const std::string& where) {
  map_reader m{n, "email of " + where, {"users", "only_failures", "on_change"}};
  notify_email e;
  auto users = m.require("users");
  e.users = scalar(users, "'users' in email of " + where);
  auto list = split_list_param(e.users);
  if (list.empty())
    fail(users, "'users' in email of " + where + " names no address");
  for (auto& address : list)
    if (address.find('@') == std::string::npos || address.find_first_of("<>\r\n") != std::string::npos)
      fail(users, "'" + address + "' in email of " + where + " is not an e-mail address");
  if (m.has("only_failures"))
    e.only_failures = boolean(m.get("only_failures"), "'only_failures'");
  if (m.has("on_change"))
    e.on_change = boolean(m.get("on_change"), "'on_change'");
  return e;
}

std::vector<notify_webhook> read_webhooks(const YAML::Node& n, const std::string& where) {
  if (!n.IsSequence())
    fail(n, "webhooks of " + where + " must be a list, not " + kind_of(n));
  std::vector<notify_webhook> out;
  for (auto item : n) {
    map_reader m{item, "a webhook of " + where, {"url", "secret_name", "only_failures"}};
    notify_webhook w;
    auto url = m.require("url");
    w.url = scalar(url, "'url' of a webhook");
    if (!w.url.starts_with("http://") && !w.url.starts_with("https://"))
      fail(url, "'url' of a webhook must be an http:// or https:// URL, not '" + w.url + "'");
    w.secret_name = scalar(m.require("secret_name"), "'secret_name' of a webhook");
    if (m.has("only_failures"))
      w.only_failures = boolean(m.get("only_failures"), "'only_failures'");
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<chained_trigger> read_chain(const YAML::Node& n, const std::string& where) {
  if (!n.IsSequence())
    fail(n, "triggers of " + where + " must be a list, not " + kind_of(n));
  std::vector<chained_trigger> out;
  for (auto item : n) {
    map_reader m{item, "a chained trigger of " + where, {"name", "run-names"}};
    chained_trigger c;
    c.name = scalar(m.require("name"), "'name' of a chained trigger");
    c.run_names = m.string_or("run-names", "{name}");
    c.at = mark_of(item);
    out.push_back(std::move(c));
  }
  return out;
}

run_spec read_run(const YAML::Node& n, const std::string& trigger, const project_definition& def) {
  map_reader m{n,
               "a run of trigger '" + trigger + "'",
               {"name", "host-tag", "container", "script", "script-repo", "timeout", "params",
                "loop-on", "triggers", "test-grepping", "console-progress", "persistent-volumes",
                "shared-volumes", "privileged", "cap-add", "cap-drop", "container-user",
                "container-entrypoint", "container-auth", "network"}};
  run_spec r;
  r.at = m.at();
  r.name = scalar(m.require("name"), "'name' of a run");
  auto what = "run '" + r.name + "'";
  r.host_tag = scalar(m.require("host-tag"), "'host-tag' of " + what);
  r.container = m.string_or("container", "");
  if (m.has("script") == m.has("script-repo"))
    fail(n, what + " needs exactly one of 'script' and 'script-repo'");
  if (m.has("script")) {
    r.script = scalar(m.get("script"), "'script' of " + what);
    if (!def.scripts.count(r.script))
      fail(m.get("script"), what + " names script '" + r.script + "', which 'scripts' does not define");
  } else {
    map_reader sr{m.get("script-repo"), "'script-repo' of " + what, {"name", "path"}};
    script_repo_ref ref{scalar(sr.require("name"), "'name' of script-repo"),
                        scalar(sr.require("path"), "'path' of script-repo")};
    if (!def.script_repos.count(ref.name))
      fail(sr.get("name"), what + " names script-repo '" + ref.name
                             + "', which 'script-repos' does not define");
    r.script_repo = std::move(ref);
  }
  if (m.has("timeout")) {
    auto t = m.get("timeout");
    auto text = scalar(t, "'timeout' of " + what);
    if (!text.empty() && text.back() == 's') {
      YAML::Node seconds{text.substr(0, text.size() - 1)};
      seconds.SetTag(t.Tag());
      try {
        r.timeout_seconds = positive_int(seconds, "'timeout' of " + what);
      } catch (const std::exception&) {
        fail(t, "'timeout' of " + what + " is minutes (5) or seconds (90s), not '" + text + "'");
      }
    } else {
      r.timeout_seconds = 60 * positive_int(t, "'timeout' of " + what);
    }
  }
  if (m.has("params"))
    r.params = string_map(m.get("params"), "params of " + what);
  if (m.has("loop-on")) {
    auto loops = m.get("loop-on");
    if (!loops.IsSequence())
      fail(loops, "'loop-on' of " + what + " must be a list, not " + kind_of(loops));
    for (auto item : loops) {
      map_reader lp{item, "a loop-on entry of " + what, {"param", "values"}};
      loop_param l{scalar(lp.require("param"), "'param' of loop-on"),
                   string_list(lp.require("values"), "'values' of loop-on")};
      if (l.values.empty())
        fail(lp.get("values"), "'values' of loop-on in " + what + " is empty");
      r.loop_on.push_back(std::move(l));
    }
  }
  if (m.has("triggers"))
    r.triggers = read_chain(m.get("triggers"), what);
  if (m.has("test-grepping")) {
    map_reader tg{m.get("test-grepping"), "'test-grepping' of " + what,
                  {"test-pattern", "result-pattern", "fixupdict"}};
    test_grepping g;
    g.test_pattern = tg.string_or("test-pattern", "");
    g.result_pattern = scalar(tg.require("result-pattern"), "'result-pattern'");
    if (!g.test_pattern.empty())
      check_regex(tg.get("test-pattern"), g.test_pattern, "'test-pattern' of " + what);
    check_regex(tg.get("result-pattern"), g.result_pattern, "'result-pattern' of " + what);
    if (tg.has("fixupdict"))
      g.fixupdict = string_map(tg.get("fixupdict"), "'fixupdict' of " + what);
    r.grepping = std::move(g);
  }
  if (m.has("console-progress")) {
    map_reader cp{m.get("console-progress"), "'console-progress' of " + what, {"progress-pattern"}};
    r.progress_pattern = scalar(cp.require("progress-pattern"), "'progress-pattern'");
    check_regex(cp.get("progress-pattern"), r.progress_pattern, "'progress-pattern' of " + what);
  }
  if (m.has("persistent-volumes"))
    r.persistent_volumes = string_map(m.get("persistent-volumes"), "'persistent-volumes' of " + what);
  if (m.has("shared-volumes"))
    r.shared_volumes = string_map(m.get("shared-volumes"), "'shared-volumes' of " + what);
  if (m.has("privileged"))
    r.privileged = boolean(m.get("privileged"), "'privileged' of " + what);
  if (m.has("cap-add"))
    r.cap_add = string_list(m.get("cap-add"), "'cap-add' of " + what);
  if (m.has("cap-drop"))
    r.cap_drop = string_list(m.get("cap-drop"), "'cap-drop' of " + what);
  r.container_user = m.string_or("container-user", "");
  r.container_entrypoint = m.string_or("container-entrypoint", "");
  r.container_auth = m.string_or("container-auth", "");
  if (m.has("network"))
    r.network = boolean(m.get("network"), "'network' of " + what);
  return r;
}

trigger_type read_trigger_type(const YAML::Node& n) {
  auto s = scalar(n, "'type' of a trigger");
  for (auto t : {trigger_type::simple, trigger_type::git_poller, trigger_type::github_pr,
                 trigger_type::gitlab_mr, trigger_type::cron, trigger_type::webhook})
    if (s == to_string(t))
      return t;
  fail(n, "unknown trigger type '" + s
            + "' (known: simple, git_poller, github_pr, gitlab_mr, cron, webhook)");
}

trigger_spec read_trigger(const YAML::Node& n, const project_definition& def) {
  map_reader m{n,
               "a trigger",
               {"name", "type", "params", "runs", "triggers", "email", "webhooks",
                "poll-interval", "schedule", "webhook-secret", "git-token"}};
  trigger_spec t;
  t.at = m.at();
  t.name = scalar(m.require("name"), "'name' of a trigger");
  auto what = "trigger '" + t.name + "'";
  t.type = read_trigger_type(m.require("type"));
  if (m.has("params"))
    t.params = string_map(m.get("params"), "params of " + what);
  auto runs = m.require("runs");
  if (!runs.IsSequence() || runs.size() == 0)
    fail(runs, "'runs' of " + what + " must be a non-empty list");
  for (auto r : runs)
    t.runs.push_back(read_run(r, t.name, def));
  if (m.has("triggers"))
    t.triggers = read_chain(m.get("triggers"), what);
  if (m.has("email"))
    t.email = read_email(m.get("email"), what);
  if (m.has("webhooks"))
    t.webhooks = read_webhooks(m.get("webhooks"), what);
  if (m.has("poll-interval"))
    t.poll_interval_s = positive_int(m.get("poll-interval"), "'poll-interval' of " + what);
  t.schedule = m.string_or("schedule", "");
  t.webhook_secret = m.string_or("webhook-secret", "");
  t.git_token = m.string_or("git-token", "");
  if (t.type == trigger_type::cron && t.schedule.empty())
    fail(n, what + " is a cron trigger and needs 'schedule'");
  if (t.type != trigger_type::cron && !t.schedule.empty())
    fail(m.get("schedule"), "'schedule' is for cron triggers; " + what + " is "
                              + std::string{to_string(t.type)});
  if (!t.schedule.empty()) {
    auto c = cron_schedule::parse(t.schedule);
    if (!c)
      fail(m.get("schedule"), "'schedule' of " + what + ": " + c.error().message);
    t.cron = std::make_shared<const cron_schedule>(std::move(*c));
  }
  if (t.type == trigger_type::git_poller && !t.params.count("GIT_URL"))
    fail(n, what + " is a git_poller and needs GIT_URL in its params");
  return t;
}

void check_chain(const std::vector<chained_trigger>& chain, const project_definition& def) {
  for (auto& c : chain)
    if (!def.find_trigger(c.name))
      fail(c.at, "chained trigger '" + c.name + "' names no trigger of this project");
}

project_definition read_definition(const YAML::Node& root) {
  if (!root.IsDefined() || root.IsNull())
    fail(source_mark{1, 1}, "the definition is empty");
  map_reader m{root,
               "the project definition",
               {"timeout", "description", "params", "scripts", "script-repos", "email",
                "webhooks", "triggers", "synchronous-builds", "retention"}};
  project_definition def;
  def.timeout_minutes = positive_int(m.require("timeout"), "'timeout'");
  def.description = m.string_or("description", "");
  if (m.has("params"))
    def.params = string_map(m.get("params"), "'params'");
  if (m.has("scripts"))
    def.scripts = string_map(m.get("scripts"), "'scripts'");
  if (m.has("script-repos")) {
    auto repos = m.get("script-repos");
    if (!repos.IsMap())
      fail(repos, std::string{"'script-repos' must be a map, not "} + kind_of(repos));
    for (auto it = repos.begin(); it != repos.end(); ++it) {
      auto name = scalar(it->first, "a name in 'script-repos'");
      map_reader r{it->second, "script-repo '" + name + "'", {"clone-url", "git-ref", "token"}};
      script_repo repo{scalar(r.require("clone-url"), "'clone-url'"), r.string_or("git-ref", ""),
                       r.string_or("token", "")};
      if (!def.script_repos.emplace(name, std::move(repo)).second)
        fail(it->first, "duplicate key '" + name + "' in 'script-repos'");
    }
  }
  if (m.has("email"))
    def.email = read_email(m.get("email"), "the project");
  if (m.has("webhooks"))
    def.webhooks = read_webhooks(m.get("webhooks"), "the project");
  if (m.has("synchronous-builds"))
    def.synchronous_builds = boolean(m.get("synchronous-builds"), "'synchronous-builds'");
  if (m.has("retention")) {
    map_reader r{m.get("retention"), "retention", {"keep-days", "keep-builds"}};
    if (r.has("keep-days"))
      def.retention.keep_days = positive_int(r.get("keep-days"), "'keep-days' of retention");
    if (r.has("keep-builds"))
      def.retention.keep_builds = positive_int(r.get("keep-builds"), "'keep-builds' of retention");
    if (!def.retention.keep_days && !def.retention.keep_builds)
      fail(m.get("retention"), "retention needs 'keep-days' and/or 'keep-builds'");
  }

  auto triggers = m.require("triggers");
  if (!triggers.IsSequence() || triggers.size() == 0)
    fail(triggers, "'triggers' must be a non-empty list");
  for (auto t : triggers) {
    auto trigger = read_trigger(t, def);
    if (def.find_trigger(trigger.name))
      fail(trigger.at, "duplicate trigger name '" + trigger.name + "'");
    def.triggers.push_back(std::move(trigger));
  }
  for (auto& t : def.triggers) {
    check_chain(t.triggers, def);
    for (auto& r : t.runs)
      check_chain(r.triggers, def);
  }
  return def;
}

// A definition that parses may still expand into clashing run names.
void check_expansions(const project_definition& def) {
  for (auto& t : def.triggers) {
    auto runs = expand_trigger(def, t, {});
    if (!runs)
      throw invalid{{0, 0}, runs.error().message};  // already names line and column
  }
}

error definition_error(source_mark at, const std::string& message) {
  if (at.line == 0)
    return {"invalid_definition", message};
  return {"invalid_definition", "line " + std::to_string(at.line) + ", column "
                                  + std::to_string(at.column) + ": " + message};
}

} // namespace

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

result<project_definition> parse_project_definition(std::string_view yaml) {
  try {
    auto def = read_definition(YAML::Load(std::string{yaml}));
    check_expansions(def);
    return def;
  } catch (const invalid& e) {
    return definition_error(e.at, e.message);
  } catch (const YAML::Exception& e) {
    return definition_error({e.mark.line + 1, e.mark.column + 1}, e.msg);
  }
}

result<std::vector<expanded_run>> expand_trigger(const project_definition& def,
                                                 const trigger_spec& trigger,
                                                 const param_map& build_params) {
  std::vector<expanded_run> out;
  std::set<std::string> names;
  for (auto& spec : trigger.runs) {
    // The cartesian product of loop-on values, first param outermost.
    std::vector<std::size_t> index(spec.loop_on.size(), 0);
    for (;;) {
      expanded_run run;
      run.spec = &spec;
      run.host_tag = spec.host_tag;
      run.params = def.params;
      for (auto& [k, v] : trigger.params)
        run.params[k] = v;
      for (auto& [k, v] : spec.params)
        run.params[k] = v;
      for (std::size_t i = 0; i < spec.loop_on.size(); ++i) {
        auto& value = spec.loop_on[i].values[index[i]];
        if (spec.loop_on[i].param == "host-tag")
          run.host_tag = value;
        else
          run.params[spec.loop_on[i].param] = value;
        run.loop += (i ? "-" : "") + value;
      }
      for (auto& [k, v] : build_params)
        run.params[k] = v;
      run.name = replace_all(spec.name, "{loop}", run.loop);
      if (!names.insert(run.name).second)
        return definition_error(spec.at, "run name '" + run.name + "' appears twice in trigger '"
                                            + trigger.name + "' after loop-on expansion");
      out.push_back(std::move(run));
      // Next combination (odometer, last param fastest).
      std::size_t i = spec.loop_on.size();
      while (i > 0 && ++index[i - 1] == spec.loop_on[i - 1].values.size())
        index[--i] = 0;
      if (i == 0)
        break;
    }
  }
  return out;
}

std::vector<std::string> split_list_param(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!item.empty())
        out.push_back(std::move(item));
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty())
    out.push_back(std::move(item));
  return out;
}

} // namespace kiln::domain
