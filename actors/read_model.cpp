#include "actors/read_model.hpp"

#include "actors/notifications.hpp"
#include "events/streams.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace kiln::domain {

namespace {

// Splits "a/b/c…" into the first `n` parts and the rest.
std::vector<std::string_view> split(std::string_view s, std::size_t n) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    auto slash = s.find('/');
    if (slash == std::string_view::npos)
      break;
    parts.push_back(s.substr(0, slash));
    s.remove_prefix(slash + 1);
  }
  parts.push_back(s);
  return parts;
}

std::optional<std::uint32_t> number(std::string_view s) {
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return n;
}

} // namespace

std::optional<run_key> parse_run_stream(std::string_view stream) {
  auto p = split(stream, 4);
  if (p.size() != 4 || p[0] != "run")
    return std::nullopt;
  auto n = number(p[2]);
  if (!n)
    return std::nullopt;
  return run_key{std::string{p[1]}, *n, std::string{p[3]}};
}

std::optional<std::pair<std::string, std::uint32_t>> parse_build_stream(std::string_view stream) {
  auto p = split(stream, 3);
  if (p.size() != 3 || p[0] != "build")
    return std::nullopt;
  auto n = number(p[2]);
  if (!n)
    return std::nullopt;
  return std::pair{std::string{p[1]}, *n};
}

std::string run_key::path() const {
  return project + "/" + std::to_string(build) + "/" + name;
}
std::string run_key::stream() const { return streams::run(project, build, name).value; }

bool run_summary::finished() const {
  switch (status) {
    case kiln::status::passed:
    case kiln::status::failed:
    case kiln::status::cancelled:
    case kiln::status::timeout:
    case kiln::status::skipped:
      return true;
    default:
      return false;
  }
}

const run_summary* build_summary::run(std::string_view name) const {
  for (auto& r : runs)
    if (r.name == name)
      return &r;
  return nullptr;
}

run_summary* build_summary::run(std::string_view name) {
  return const_cast<run_summary*>(std::as_const(*this).run(name));
}

std::vector<std::string> build_summary::run_names() const {
  auto names = facts.runs;
  for (auto& a : added)
    names.insert(names.end(), a.runs.begin(), a.runs.end());
  return names;
}

namespace {

// A run its open build names but has not queued yet, as a reader sees it.
run_summary about_to_queue(std::string_view name, std::int64_t build_created_ns) {
  run_summary r;
  r.name = std::string{name};
  r.queued_ns = build_created_ns;
  return r;
}

} // namespace

std::optional<run_summary> build_summary::readable_run(std::string_view name) const {
  if (auto r = run(name))
    return *r;
  auto names = run_names();
  if (cancelled || completed || std::find(names.begin(), names.end(), name) == names.end())
    return std::nullopt;
  return about_to_queue(name, created_ns);
}

std::vector<run_summary> build_summary::readable_runs() const {
  if (cancelled || completed)
    return runs;
  // runs is already in the build's order; the pending ones go in between.
  std::vector<run_summary> out;
  for (auto& name : run_names())
    if (auto r = run(name))
      out.push_back(*r);
    else
      out.push_back(about_to_queue(name, created_ns));
  return out;
}

const project_summary* read_model::project(std::string_view name) const {
  auto it = projects_.find(std::string{name});
  return it == projects_.end() ? nullptr : &it->second;
}

const build_summary* read_model::build(std::string_view project, std::uint32_t number) const {
  auto p = this->project(project);
  if (!p)
    return nullptr;
  auto it = p->builds.find(number);
  return it == p->builds.end() ? nullptr : &it->second;
}

const run_summary* read_model::run(const run_key& k) const {
  auto b = build(k.project, k.build);
  return b ? b->run(k.name) : nullptr;
}

std::optional<run_summary> read_model::readable_run(const run_key& k) const {
  auto b = build(k.project, k.build);
  return b ? b->readable_run(k.name) : std::nullopt;
}

const worker_summary* read_model::worker(std::string_view name) const {
  auto it = workers_.find(std::string{name});
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<const build_summary*> read_model::builds(std::string_view project, std::size_t limit,
                                                     std::uint32_t before) const {
  std::vector<const build_summary*> out;
  auto p = this->project(project);
  if (!p)
    return out;
  auto it = before ? p->builds.lower_bound(before) : p->builds.end();
  while (it != p->builds.begin() && out.size() < limit)
    out.push_back(&(--it)->second);
  return out;
}

project_summary& read_model::project_entry(std::string_view name) {
  auto& p = projects_[std::string{name}];
  if (p.name.empty())
    p.name = name;
  return p;
}

void read_model::apply(const logged_commit& lc) {
  if (lc.seq <= seq_)
    return;
  seq_ = lc.seq;
  auto& c = lc.body;
  auto kind = streams::kind_of(c.stream);
  for (auto& e : c.events) {
    if (kind == "project")
      apply_project(project_entry(std::string_view{c.stream.value}.substr(8)), c, e);
    else if (kind == "build")
      apply_build(c.stream, c, e, lc.seq);
    else if (kind == "run")
      apply_run(c.stream, c, e, lc.seq);
    else if (kind == "worker") {
      auto name = c.stream.value.substr(7);
      auto& w = workers_[name];
      if (w.name.empty())
        w.name = name;
      apply_worker(w, c, e);
    } else if (kind == "token") {
      auto& t = tokens_[c.stream.value.substr(6)];
      if (auto x = std::get_if<token_issued>(&e))
        t = {x->id, x->label, x->scope, x->project, x->token_sha256, false,
             c.meta.time_unix_ns};
      else if (std::get_if<token_revoked>(&e))
        t.revoked = true;
    }
  }
}

void read_model::apply_project(project_summary& p, const commit& c, const event& e) {
  auto now = c.meta.time_unix_ns;
  if (std::get_if<project_created>(&e)) {
    p.deleted = false;
    p.created_ns = now;
  } else if (auto x = std::get_if<project_definition_updated>(&e)) {
    p.definition_version = x->definition_version;
    p.content_sha256 = x->content_sha256;
    p.yaml = x->yaml;
    auto def = parse_project_definition(x->yaml);
    p.definition = def ? std::make_shared<const project_definition>(std::move(*def)) : nullptr;
    p.updated_ns = now;
  } else if (auto x = std::get_if<project_secret_set>(&e)) {
    p.secret_keys.insert(x->key);
  } else if (auto x = std::get_if<project_secret_removed>(&e)) {
    p.secret_keys.erase(x->key);
  } else if (std::get_if<project_deleted>(&e)) {
    p.deleted = true;
    p.secret_keys.clear();
    p.content_sha256.clear();
  } else if (auto x = std::get_if<cron_slot_reached>(&e)) {
    p.cron_slots[x->trigger] = x->slot_unix_s;
  } else if (auto x = std::get_if<git_refs_polled>(&e)) {
    p.git_refs[x->trigger][x->url] = x->refs;
  } else if (auto x = std::get_if<build_number_allocated>(&e)) {
    p.last_build = x->number;
    p.allocated[x->number] = *x;
    open_.emplace(p.name, x->number);
  }
}

void read_model::apply_build(const stream_id& s, const commit& c, const event& e, global_seq) {
  auto id = parse_build_stream(s.value);
  if (!id)
    return;
  auto& p = project_entry(id->first);
  if (auto x = std::get_if<build_created>(&e)) {
    auto& b = p.builds[id->second];
    b.project = id->first;
    b.number = id->second;
    b.facts = *x;
    b.created_ns = c.meta.time_unix_ns;
    p.allocated.erase(id->second);
    open_.emplace(id->first, id->second);
    return;
  }
  auto it = p.builds.find(id->second);
  if (it == p.builds.end())
    return;
  auto& b = it->second;
  if (auto x = std::get_if<build_runs_added>(&e)) {
    b.added.push_back(*x);
  } else if (std::get_if<build_cancelled>(&e)) {
    b.cancelled = true;
  } else if (auto x = std::get_if<build_completed>(&e)) {
    b.completed = true;
    b.result = x->status;
    b.completed_ns = c.meta.time_unix_ns;
    open_.erase({id->first, id->second});
  } else if (auto x = std::get_if<build_pinned>(&e)) {
    b.pinned = true;
    b.pin_name = x->name;
  } else if (std::get_if<build_unpinned>(&e)) {
    b.pinned = false;
    b.pin_name.clear();
  } else if (auto x = std::get_if<notification_planned>(&e)) {
    auto& n = b.notifications[x->id];
    n.kind = x->kind;
    n.spec = x->spec;
    n.order = static_cast<std::uint32_t>(b.notifications.size());
    track_notifications(b);
  } else if (auto x = std::get_if<notification_started>(&e)) {
    build::fold(b.notifications[x->id].state, e);
    track_notifications(b);
  } else if (auto x = std::get_if<notification_finished>(&e)) {
    auto& n = b.notifications[x->id];
    build::fold(n.state, e);
    n.detail = x->detail;
    track_notifications(b);
  }
}

void read_model::track_notifications(const build_summary& b) {
  bool pending = std::any_of(b.notifications.begin(), b.notifications.end(),
                             [](auto& n) { return !n.second.settled(); });
  if (pending)
    notifying_.emplace(b.project, b.number);
  else
    notifying_.erase({b.project, b.number});
}

// A commit status for run `r` of a build that names a repository: queued
// (pending) and at its end, for each attempt. A status not yet sent when a
// later one of its run arrives is superseded: only the latest counts.
void read_model::add_status(build_summary& b, const run_summary& r, kiln::status state) {
  auto kind = commit_status_kind(b.facts);
  if (kind.empty())
    return;
  auto id = "status/" + r.name + "/" + std::to_string(r.attempt) + "/"
            + (state == kiln::status::queued ? "queued" : "done");
  if (b.notifications.count(id))
    return;
  for (auto& [other, n] : b.notifications)
    if (n.run == r.name && !n.state.in_flight && !n.state.settled())
      n.superseded = true;
  auto& n = b.notifications[id];
  n.kind = kind;
  n.run = r.name;
  n.spec = nlohmann::json{{"run", r.name}, {"state", kiln::to_string(state)}}.dump();
  n.order = static_cast<std::uint32_t>(b.notifications.size());
  track_notifications(b);
}

void read_model::apply_run(const stream_id& s, const commit& c, const event& e, global_seq seq) {
  auto key = parse_run_stream(s.value);
  if (!key)
    return;
  auto& p = project_entry(key->project);
  auto bit = p.builds.find(key->build);
  if (bit == p.builds.end())
    return;
  auto& b = bit->second;
  auto now = c.meta.time_unix_ns;
  if (auto x = std::get_if<run_queued>(&e)) {
    if (b.run(key->name))
      return;
    run_summary r;
    r.name = key->name;
    r.host_tag = x->host_tag;
    r.attempt = x->attempt;
    r.timeout_s = x->timeout_s;
    r.queued_seq = seq;
    r.queued_ns = now;
    b.runs.push_back(std::move(r));
    // Runs are queued concurrently; list them in the build's own order.
    auto order = b.run_names();
    auto rank = [&](const run_summary& x) {
      return std::find(order.begin(), order.end(), x.name) - order.begin();
    };
    std::stable_sort(b.runs.begin(), b.runs.end(),
                     [&](auto& x, auto& y) { return rank(x) < rank(y); });
    queue_[seq] = *key;
    add_status(b, *b.run(key->name), kiln::status::queued);
    return;
  }
  auto r = b.run(key->name);
  if (!r)
    return;
  auto release = [&] {
    queue_.erase(r->queued_seq);
    if (!r->worker.empty())
      if (auto w = workers_.find(r->worker); w != workers_.end())
        w->second.holds.erase(*key);
  };
  if (auto x = std::get_if<run_assigned>(&e)) {
    queue_.erase(r->queued_seq);
    r->worker = x->worker;
    auto& w = workers_[x->worker];
    if (w.name.empty())
      w.name = x->worker;
    w.holds.insert(*key);
  } else if (std::get_if<run_started>(&e)) {
    r->status = kiln::status::running;
    r->started_ns = now;
  } else if (auto x = std::get_if<run_completed>(&e)) {
    release();
    r->status = x->status;
    r->exit_code = x->exit_code;
    r->console_size = x->console_size;
    r->finished_ns = now;
    if (!r->console_archived)
      unarchived_.insert(*key);
    add_status(b, *r, x->status);
  } else if (std::get_if<run_cancel_requested>(&e)) {
    r->cancel_requested = true;
  } else if (std::get_if<run_artifact_stored>(&e)) {
    ++r->artifacts;
  } else if (std::get_if<run_artifacts_expired>(&e)) {
    r->artifacts_expired = true;
  } else if (std::get_if<run_console_archived>(&e)) {
    r->console_archived = true;
    unarchived_.erase(*key);
  } else if (auto x = std::get_if<run_requeued>(&e)) {
    release();
    r->worker.clear();
    r->status = kiln::status::queued;
    r->attempt = x->attempt;
    r->started_ns = 0;
    r->queued_seq = seq;
    queue_[seq] = *key;
    add_status(b, *r, kiln::status::queued);
  }
}

void read_model::apply_worker(worker_summary& w, const commit&, const event& e) {
  if (auto x = std::get_if<worker_registered>(&e)) {
    auto holds = std::move(w.holds);
    w = worker_summary{};
    w.name = x->name;
    w.tags = x->tags;
    w.concurrency = x->concurrency;
    w.host_json = x->host_json;
    w.token_sha256 = x->token_sha256;
    w.holds = std::move(holds);
  } else if (std::get_if<worker_enlisted>(&e)) {
    w.enlisted = true;
  } else if (std::get_if<worker_delisted>(&e)) {
    w.enlisted = false;
  } else if (std::get_if<worker_deleted>(&e)) {
    w.deleted = true;
    w.enlisted = false;
    w.online = false;
  } else if (std::get_if<worker_online>(&e)) {
    w.online = true;
  } else if (std::get_if<worker_offline>(&e)) {
    w.online = false;
  }
}

} // namespace kiln::domain
