#include "actors/notifications.hpp"

#include "actors/webhooks.hpp"
#include "events/utc_time.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

namespace kiln::domain {

namespace {

using json = nlohmann::json;

const trigger_spec* find_trigger(const project_definition& def, const std::string& name) {
  for (auto& t : def.triggers)
    if (t.name == name)
      return &t;
  return nullptr;
}

bool failed(kiln::status s) { return s != kiln::status::passed; }

std::string param(const build_created& f, const char* key) {
  auto it = f.params.find(key);
  return it == f.params.end() ? std::string{} : it->second;
}

error permanent(std::string message) { return {"invalid_argument", std::move(message)}; }

json parse_spec(const due_notification& n) {
  auto j = json::parse(n.spec, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string build_url(const notify_settings& s, const build_summary& b) {
  return s.public_url + "/v1/projects/" + b.project + "/builds/" + std::to_string(b.number);
}

std::string run_url(const notify_settings& s, const build_summary& b, const std::string& run) {
  return build_url(s, b) + "/runs/" + run;
}

std::string seconds_taken(std::int64_t from_ns, std::int64_t to_ns) {
  if (from_ns <= 0 || to_ns < from_ns)
    return {};
  return " in " + std::to_string((to_ns - from_ns) / 1'000'000'000) + " s";
}

} // namespace

std::vector<notification_planned> plan_notifications(const project_definition& def,
                                                     const std::string& trigger,
                                                     kiln::status result,
                                                     std::optional<kiln::status> previous) {
  auto t = find_trigger(def, trigger);
  auto& email = t && t->email ? t->email : def.email;
  auto& hooks = t && !t->webhooks.empty() ? t->webhooks : def.webhooks;
  std::vector<notification_planned> out;
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    auto& w = hooks[i];
    if (w.only_failures && !failed(result))
      continue;
    out.push_back({"webhook/" + std::to_string(i), "webhook",
                   json{{"url", w.url}, {"secret_name", w.secret_name}}.dump()});
  }
  if (email) {
    bool changed = previous ? failed(*previous) != failed(result) : failed(result);
    bool wanted = (!email->only_failures || failed(result)) && (!email->on_change || changed);
    if (wanted)
      out.push_back({"email", "email",
                     json{{"to", split_list_param(email->users)},
                          {"previous", previous ? kiln::to_string(*previous) : ""}}
                       .dump()});
  }
  return out;
}

std::optional<kiln::status> previous_result(const project_summary& p, const std::string& trigger,
                                            std::uint32_t number) {
  auto it = p.builds.lower_bound(number);
  while (it != p.builds.begin()) {
    --it;
    auto& b = it->second;
    if (b.completed && b.facts.trigger == trigger && b.result != kiln::status::cancelled)
      return b.result;
  }
  return std::nullopt;
}

std::string commit_status_kind(const build_created& facts) {
  if (param(facts, "GIT_SHA").empty())
    return {};
  if (!param(facts, "GH_OWNER").empty() && !param(facts, "GH_REPO").empty())
    return "github_status";
  if (!param(facts, "GL_PROJECT_ID").empty())
    return "gitlab_status";
  return {};
}

std::int64_t retry_at(const retry_policy& policy, std::uint32_t attempt, std::int64_t now_ms,
                      bool permanent) {
  if (permanent || attempt >= policy.max_attempts)
    return 0;
  auto delay = policy.first_delay_ms;
  for (std::uint32_t i = 1; i < attempt; ++i)
    delay *= 3;
  return now_ms + delay;
}

bool permanent_http_status(int status) {
  return status >= 400 && status < 500 && status != 408 && status != 425 && status != 429;
}

std::vector<std::string> secrets_needed(const due_notification& n) {
  if (n.kind == "webhook")
    return {parse_spec(n).value("secret_name", "")};
  if (n.kind == "github_status")
    return {"githubtok"};
  if (n.kind == "gitlab_status")
    return {"gitlabtok"};
  return {};
}

std::vector<due_notification> due_notifications(const read_model& model, std::int64_t now_ms) {
  std::vector<due_notification> out;
  for (auto& [project, number] : model.notifying()) {
    auto b = model.build(project, number);
    if (!b)
      continue;
    // A run's statuses go one at a time, oldest first: the first unsettled one.
    std::map<std::string, const notification_summary*> first_of_run;
    std::vector<std::pair<const std::string*, const notification_summary*>> candidates;
    for (auto& [id, n] : b->notifications) {
      if (n.settled())
        continue;
      if (!n.run.empty()) {
        auto& first = first_of_run[n.run];
        if (first && first->order < n.order)
          continue;
        first = &n;
      }
      candidates.emplace_back(&id, &n);
    }
    for (auto& [id, n] : candidates) {
      if (!n->run.empty() && first_of_run[n->run] != n)
        continue;
      auto& st = n->state;
      if (st.in_flight ? now_ms < st.lease_until_ms : now_ms < st.retry_at_ms)
        continue;
      out.push_back({project, number, *id, n->kind, n->spec});
    }
  }
  return out;
}

result<outgoing_http> webhook_delivery(const due_notification& n, const std::string& build_json,
                                       const secret_lookup& secrets, std::int64_t now_unix_s) {
  auto spec = parse_spec(n);
  auto url = spec.value("url", "");
  auto secret_name = spec.value("secret_name", "");
  auto key = secrets.find(secret_name);
  if (url.empty())
    return permanent("the webhook has no url");
  if (key == secrets.end())
    return permanent("the project has no secret '" + secret_name + "' to sign the webhook with");
  auto ts = std::to_string(now_unix_s);
  return outgoing_http{url,
                       {{"Content-Type", "application/json"},
                        {"X-Kiln-Event", "build"},
                        {"X-Kiln-Delivery", n.project + "/" + std::to_string(n.build) + "/" + n.id},
                        {"X-Kiln-Timestamp", ts},
                        {"X-Kiln-Signature", webhook_signature(key->second, ts + "." + build_json)}},
                       build_json};
}

result<outgoing_http> status_delivery(const due_notification& n, const build_summary& b,
                                      const secret_lookup& secrets, const notify_settings& s) {
  auto spec = parse_spec(n);
  auto run_name = spec.value("run", "");
  auto state = kiln::status_from_string(spec.value("state", "")).value_or(kiln::status::queued);
  auto run = b.run(run_name);
  auto description = state == kiln::status::queued
                       ? std::string{"queued"}
                       : std::string{kiln::to_string(state)}
                           + (run ? seconds_taken(run->started_ns, run->finished_ns) : "");
  auto sha = param(b.facts, "GIT_SHA");
  auto target = run_url(s, b, run_name);
  if (n.kind == "github_status") {
    auto token = secrets.find("githubtok");
    if (token == secrets.end())
      return permanent("the project has no secret 'githubtok' to post commit statuses with");
    const char* gh = "error";
    switch (state) {
      case kiln::status::queued:
      case kiln::status::running: gh = "pending"; break;
      case kiln::status::passed:
      case kiln::status::skipped: gh = "success"; break;
      case kiln::status::failed:
      case kiln::status::timeout: gh = "failure"; break;
      default: break;
    }
    return outgoing_http{s.github_api + "/repos/" + param(b.facts, "GH_OWNER") + "/"
                           + param(b.facts, "GH_REPO") + "/statuses/" + sha,
                         {{"Content-Type", "application/json"},
                          {"Accept", "application/vnd.github+json"},
                          {"Authorization", "token " + token->second}},
                         json{{"state", gh},
                              {"context", run_name},
                              {"description", description},
                              {"target_url", target}}
                           .dump()};
  }
  if (n.kind == "gitlab_status") {
    auto token = secrets.find("gitlabtok");
    if (token == secrets.end())
      return permanent("the project has no secret 'gitlabtok' to post commit statuses with");
    const char* gl = "failed";
    switch (state) {
      case kiln::status::queued: gl = "pending"; break;
      case kiln::status::running: gl = "running"; break;
      case kiln::status::passed: gl = "success"; break;
      case kiln::status::skipped: gl = "skipped"; break;
      case kiln::status::cancelled: gl = "canceled"; break;
      default: break;
    }
    return outgoing_http{s.gitlab_api + "/projects/" + param(b.facts, "GL_PROJECT_ID")
                           + "/statuses/" + sha,
                         {{"Content-Type", "application/json"},
                          {"PRIVATE-TOKEN", token->second}},
                         json{{"state", gl},
                              {"name", run_name},
                              {"description", description},
                              {"target_url", target}}
                           .dump()};
  }
  return permanent("no commit status kind '" + n.kind + "'");
}

result<outgoing_mail> mail_delivery(const due_notification& n, const build_summary& b,
                                    const notify_settings& s, std::int64_t now_unix_s) {
  auto spec = parse_spec(n);
  outgoing_mail m;
  if (spec.contains("to") && spec["to"].is_array())
    for (auto& a : spec["to"])
      if (a.is_string())
        m.to.push_back(a.get<std::string>());
  if (m.to.empty())
    return permanent("the e-mail has no recipients");
  auto result = b.completed ? b.result : kiln::status::running;
  auto previous = kiln::status_from_string(spec.value("previous", ""));
  std::string change;
  if (previous && failed(*previous) && !failed(result))
    change = " (fixed)";
  else if (previous && failed(*previous) && failed(result))
    change = " (still failing)";
  else if (failed(result))
    change = " (broken)";
  std::string to;
  for (auto& a : m.to)
    to += (to.empty() ? "" : ", ") + a;
  auto title = b.project + " #" + std::to_string(b.number) + " " + std::string{kiln::to_string(result)};
  std::string text;
  auto line = [&](const std::string& l) { text += l + "\r\n"; };
  line("From: kiln <" + s.mail_from + ">");
  line("To: " + to);
  line("Subject: [kiln] " + title + change);
  line("Date: " + utc_text(now_unix_s, "%a, %d %b %Y %H:%M:%S +0000"));
  line("Message-ID: <" + b.project + "." + std::to_string(b.number) + "." + n.id + "@kiln>");
  line("MIME-Version: 1.0");
  line("Content-Type: text/plain; charset=utf-8");
  line("Content-Transfer-Encoding: 8bit");
  line("");
  line("Build " + title + seconds_taken(b.created_ns, b.completed_ns) + ".");
  line("Trigger: " + b.facts.trigger + (b.facts.reason.empty() ? "" : " (" + b.facts.reason + ")"));
  if (!b.facts.ref.empty() || !b.facts.sha.empty())
    line("Commit: " + b.facts.ref + (b.facts.sha.empty() ? "" : " @ " + b.facts.sha));
  line("Build: " + build_url(s, b));
  line("");
  line("Runs:");
  for (auto& r : b.runs) {
    auto st = std::string{kiln::to_string(r.status)};
    st.resize(std::max<std::size_t>(st.size(), 10), ' ');
    line("  " + st + r.name + seconds_taken(r.started_ns, r.finished_ns));
    if (r.status != kiln::status::passed)
      line("            " + run_url(s, b, r.name) + "/console");
  }
  m.message = std::move(text);
  return m;
}

} // namespace kiln::domain
