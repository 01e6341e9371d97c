#include "actors/webhooks.hpp"

#include "events/commit.hpp"

#include <nlohmann/json.hpp>
#include "events/sha256.hpp"

#include <openssl/crypto.h>

#include <cstdlib>

namespace kiln::domain {

namespace {

using json = nlohmann::json;
constexpr std::int64_t replay_window_s = 300;

error unauthorized(std::string message) { return {"unauthorized", std::move(message)}; }
error bad_request(std::string message) { return {"bad_request", std::move(message)}; }

bool same(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string header(const webhook_request& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string{} : it->second;
}

trigger_type kind_type(const std::string& kind) {
  if (kind == "github")
    return trigger_type::github_pr;
  if (kind == "gitlab")
    return trigger_type::gitlab_mr;
  return trigger_type::webhook;
}

std::string str(const json& j, const json::json_pointer& at) {
  return j.contains(at) && j.at(at).is_string() ? j.at(at).get<std::string>() : std::string{};
}

// A number (GitLab's ids) as text; empty when it is not there.
std::string number_at(const json& j, const json::json_pointer& at) {
  return j.contains(at) && j.at(at).is_number_integer() ? std::to_string(j.at(at).get<std::int64_t>())
                                                        : std::string{};
}

bool listed(const trigger_spec& t, const char* param, const std::string& value) {
  auto it = t.params.find(param);
  if (it == t.params.end())
    return true;  // no filter
  for (auto& item : split_list_param(it->second))
    if (item == value)
      return true;
  return false;
}

project::allocate_build build_for(const trigger_spec& t, param_map params, std::string ref,
                                  std::string sha, std::string reason) {
  project::allocate_build b;
  b.trigger = t.name;
  b.params = std::move(params);
  b.ref = std::move(ref);
  b.sha = std::move(sha);
  b.reason = std::move(reason);
  return b;
}

std::string branch_of(const std::string& ref) {
  return ref.starts_with("refs/heads/") ? ref.substr(11) : ref;
}

// A push: one build per trigger whose branches (GH_BRANCH / GL_BRANCH)
// hold the pushed branch; a deleted branch builds nothing.
void push_builds(const std::vector<const trigger_spec*>& triggers, const char* branch_param,
                 const std::string& url, const std::string& ref, const std::string& before,
                 const std::string& after, const param_map& repo, webhook_outcome& out) {
  if (after.empty() || after.find_first_not_of('0') == std::string::npos) {
    out.note = "a deleted ref builds nothing";
    return;
  }
  param_map params{{"GIT_URL", url}, {"GIT_REF", ref}, {"GIT_SHA", after}, {"GIT_OLD_SHA", before}};
  for (auto& [k, v] : repo)
    if (!v.empty())
      params[k] = v;
  for (auto* t : triggers)
    if (listed(*t, branch_param, branch_of(ref)))
      out.builds.push_back(build_for(*t, params, ref, after, "push to " + ref));
  if (out.builds.empty())
    out.note = "no trigger builds branch " + branch_of(ref);
}

// A pull or merge request to build: one build per trigger whose branches
// (`branch_param`) hold its target branch.
struct change_request {
  const char* branch_param;
  std::string target;  // the branch it merges into
  std::string ref, sha, reason;
  bool fork = false;
  param_map params;  // what the run sees
};

void change_builds(const std::vector<const trigger_spec*>& triggers, change_request c,
                   webhook_outcome& out) {
  if (c.fork)
    c.params[untrusted_param] = "1";
  for (auto* t : triggers)
    if (listed(*t, c.branch_param, c.target))
      out.builds.push_back(build_for(*t, c.params, c.ref, c.sha, c.reason));
  if (out.builds.empty())
    out.note = "no trigger builds changes into " + c.target;
}

result<webhook_outcome> github(const std::vector<const trigger_spec*>& triggers,
                               const webhook_request& r, const json& j) {
  webhook_outcome out;
  auto event = header(r, "x-github-event");
  if (event == "ping") {
    out.note = "pong";
    return out;
  }
  if (event == "push") {
    push_builds(triggers, "GH_BRANCH", str(j, "/repository/clone_url"_json_pointer),
                str(j, "/ref"_json_pointer), str(j, "/before"_json_pointer),
                str(j, "/after"_json_pointer),
                {{"GH_OWNER", str(j, "/repository/owner/login"_json_pointer)},
                 {"GH_REPO", str(j, "/repository/name"_json_pointer)}},
                out);
    return out;
  }
  if (event != "pull_request")
    return bad_request("GitHub event '" + event + "' is not handled (ping, push, pull_request)");
  auto action = str(j, "/action"_json_pointer);
  if (action != "opened" && action != "synchronize" && action != "reopened" && action != "labeled") {
    out.note = "pull_request action '" + action + "' builds nothing";
    return out;
  }
  auto& pr = j.at("pull_request");
  bool labelled = false;
  for (auto& l : pr.value("labels", json::array()))
    labelled = labelled || (l.is_object() && l.value("name", "") == "ok-to-test");
  auto head_repo = str(pr, "/head/repo/full_name"_json_pointer);
  auto base_repo = str(pr, "/base/repo/full_name"_json_pointer);
  bool fork = head_repo != base_repo;
  if (fork && !labelled) {
    out.note = "a pull request from a fork waits for the ok-to-test label";
    return out;
  }
  // A label other than ok-to-test changes nothing to build.
  if (action == "labeled" && str(j, "/label/name"_json_pointer) != "ok-to-test") {
    out.note = "only the ok-to-test label starts a build";
    return out;
  }
  auto number = std::to_string(pr.value("number", j.value("number", 0)));
  auto base = str(pr, "/base/ref"_json_pointer);
  auto sha = str(pr, "/head/sha"_json_pointer);
  auto ref = "refs/pull/" + number + "/head";
  change_builds(triggers,
                {"GH_BRANCH", base, ref, sha, "pull request #" + number + " " + action, fork,
                 {{"GH_PRNUM", number},
                  {"GH_BRANCH", base},
                  {"GH_OWNER", str(pr, "/base/repo/owner/login"_json_pointer)},
                  {"GH_REPO", str(pr, "/base/repo/name"_json_pointer)},
                  {"GIT_URL", str(pr, "/head/repo/clone_url"_json_pointer)},
                  {"GIT_SHA", sha},
                  {"GIT_REF", ref},
                  {"GIT_SHA_BASE", str(pr, "/base/sha"_json_pointer)}}},
                out);
  return out;
}

result<webhook_outcome> gitlab(const std::vector<const trigger_spec*>& triggers,
                               const webhook_request& r, const json& j) {
  webhook_outcome out;
  auto event = header(r, "x-gitlab-event");
  if (event == "Push Hook") {
    push_builds(triggers, "GL_BRANCH", str(j, "/project/git_http_url"_json_pointer),
                str(j, "/ref"_json_pointer), str(j, "/before"_json_pointer),
                str(j, "/after"_json_pointer), {{"GL_PROJECT_ID", number_at(j, "/project_id"_json_pointer)}},
                out);
    return out;
  }
  if (event != "Merge Request Hook")
    return bad_request("GitLab event '" + event + "' is not handled (Push Hook, Merge Request Hook)");
  auto action = str(j, "/object_attributes/action"_json_pointer);
  if (action != "open" && action != "reopen" && action != "update") {
    out.note = "merge request action '" + action + "' builds nothing";
    return out;
  }
  auto& mr = j.at("object_attributes");
  auto number = std::to_string(mr.value("iid", 0));
  auto target = str(mr, "/target_branch"_json_pointer);
  auto sha = str(mr, "/last_commit/id"_json_pointer);
  auto ref = "refs/merge-requests/" + number + "/head";
  bool fork = mr.value("source_project_id", 0) != mr.value("target_project_id", 0);
  change_builds(triggers,
                {"GL_BRANCH", target, ref, sha, "merge request !" + number + " " + action, fork,
                 {{"GL_MRNUM", number},
                  {"GL_BRANCH", target},
                  {"GL_PROJECT_ID", number_at(mr, "/source_project_id"_json_pointer)},
                  {"GIT_URL", str(mr, "/source/git_http_url"_json_pointer)},
                  {"GIT_SHA", sha},
                  {"GIT_REF", ref}}},
                out);
  return out;
}

result<webhook_outcome> generic(const std::vector<const trigger_spec*>& triggers, const json& j) {
  webhook_outcome out;
  param_map params;
  if (j.contains("params")) {
    if (!j["params"].is_object())
      return bad_request("'params' must be an object of strings");
    for (auto& [k, v] : j["params"].items()) {
      if (!v.is_string())
        return bad_request("param '" + k + "' must be a string");
      params[k] = v.get<std::string>();
    }
  }
  params.erase(untrusted_param);
  for (auto* t : triggers)
    out.builds.push_back(build_for(*t, params, j.value("ref", ""), j.value("sha", ""),
                                   j.value("reason", std::string{"webhook"})));
  return out;
}

} // namespace

std::string webhook_signature(const std::string& key, const std::string& text) {
  return "sha256=" + to_hex(hmac_sha256(key, text));
}

result<webhook_outcome> decide_webhook(const project_definition& def,
                                       const std::map<std::string, std::string>& secrets,
                                       const webhook_request& r) {
  if (r.kind != "github" && r.kind != "gitlab" && r.kind != "generic")
    return error{"not_found", "no webhook kind '" + r.kind + "' (github, gitlab, generic)"};
  auto type = kind_type(r.kind);
  std::vector<const trigger_spec*> triggers;
  for (auto& t : def.triggers)
    if (t.type == type && (r.trigger.empty() || t.name == r.trigger))
      triggers.push_back(&t);
  if (triggers.empty()) {
    auto what = "the project has no " + std::string{to_string(type)} + " trigger";
    return error{"not_found", r.trigger.empty() ? what : what + " '" + r.trigger + "'"};
  }

  // One key for the request: the triggers must agree on it.
  auto key_name = triggers.front()->webhook_secret.empty() ? std::string{"webhook-key"}
                                                           : triggers.front()->webhook_secret;
  for (auto* t : triggers)
    if ((t->webhook_secret.empty() ? std::string{"webhook-key"} : t->webhook_secret) != key_name)
      return bad_request("these triggers use different keys: name one with ?trigger=");
  auto key = secrets.find(key_name);
  if (key == secrets.end() || key->second.empty())
    return error{"not_found", "the project has no secret '" + key_name + "' to check webhooks with"};

  if (r.kind == "github") {
    auto sig = header(r, "x-hub-signature-256");
    if (sig.empty())
      return unauthorized("X-Hub-Signature-256 is missing");
    if (!same(sig, webhook_signature(key->second, r.body)))
      return unauthorized("X-Hub-Signature-256 does not match the body");
  } else if (r.kind == "gitlab") {
    auto token = header(r, "x-gitlab-token");
    if (token.empty())
      return unauthorized("X-Gitlab-Token is missing");
    if (!same(token, key->second))
      return unauthorized("X-Gitlab-Token is wrong");
  } else {
    auto ts = header(r, "x-kiln-timestamp");
    auto sig = header(r, "x-kiln-signature");
    if (ts.empty() || sig.empty())
      return unauthorized("X-Kiln-Timestamp and X-Kiln-Signature are required");
    char* end = nullptr;
    auto when = std::strtoll(ts.c_str(), &end, 10);
    if (*end != '\0')
      return unauthorized("X-Kiln-Timestamp must be unix seconds");
    if (!same(sig, webhook_signature(key->second, ts + "." + r.body)))
      return unauthorized("X-Kiln-Signature does not match the timestamp and body");
    if (std::llabs(r.now_unix_s - when) > replay_window_s)
      return unauthorized("X-Kiln-Timestamp is more than 5 minutes away: a replay is refused");
  }

  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return bad_request("the body is not a JSON object");
  try {
    if (r.kind == "github")
      return github(triggers, r, j);
    if (r.kind == "gitlab")
      return gitlab(triggers, r, j);
    return generic(triggers, j);
  } catch (const json::exception& e) {
    return bad_request(std::string{"the payload lacks what its event needs: "} + e.what());
  }
}

} // namespace kiln::domain
