#include "actors/core_service.hpp"

#include "actors/build_json.hpp"

#include "events/json.hpp"
#include "events/subjects.hpp"
#include "storage/event_log.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <mutex>
#include <map>

namespace kiln::core {

namespace {

using json = nlohmann::json;

// A request the core cannot read: the gateway validated it, so this is a
// bug or a foreign client; either way a clear error, never a crash.
struct bad_request {
  std::string message;
};

std::string fail(std::string code, std::string message) {
  return json{{"ok", false}, {"error", std::move(code)}, {"message", std::move(message)}}.dump();
}
// The head line, then the result's JSON text: a gateway passes a result
// through to its client without parsing it again.
std::string succeed(global_seq seq, const json& result) {
  return subjects::frame(R"({"ok":true,"seq":)" + std::to_string(seq.value) + "}",
                         result.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string str(const json& b, const char* key, bool required = true) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) {
    if (required)
      throw bad_request{std::string{"'"} + key + "' is required"};
    return {};
  }
  if (!it->is_string())
    throw bad_request{std::string{"'"} + key + "' must be a string"};
  return it->get<std::string>();
}

std::uint64_t num(const json& b, const char* key, std::uint64_t fallback) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null())
    return fallback;
  if (!it->is_number_unsigned())
    throw bad_request{std::string{"'"} + key + "' must be a non-negative integer"};
  return it->get<std::uint64_t>();
}

std::uint32_t build_number(const json& b) {
  auto n = num(b, "build", 0);
  if (n == 0 || n > UINT32_MAX)
    throw bad_request{"'build' must be a build number"};
  return static_cast<std::uint32_t>(n);
}

param_map params(const json& b) {
  param_map out;
  auto it = b.find("params");
  if (it == b.end() || it->is_null())
    return out;
  if (!it->is_object())
    throw bad_request{"'params' must be an object of strings"};
  for (auto& [k, v] : it->items()) {
    if (!v.is_string())
      throw bad_request{"param '" + k + "' must be a string"};
    out[k] = v.get<std::string>();
  }
  return out;
}

std::vector<std::string> strings(const json& b, const char* key) {
  std::vector<std::string> out;
  auto it = b.find(key);
  if (it == b.end() || it->is_null())
    return out;
  if (!it->is_array())
    throw bad_request{std::string{"'"} + key + "' must be a list of strings"};
  for (auto& v : *it) {
    if (!v.is_string())
      throw bad_request{std::string{"'"} + key + "' must be a list of strings"};
    out.push_back(v.get<std::string>());
  }
  return out;
}

// A gateway waits 15 s for a core's answer (gateway_options::core_timeout).
constexpr std::chrono::milliseconds max_checkin_hold{10'000};

// What a worker may report (QUEUED and LOST are the core's to say).
kiln::status status_of(const std::string& s) {
  auto st = kiln::status_from_string(s);
  if (!st || *st == kiln::status::queued || *st == kiln::status::lost)
    throw bad_request{"unknown status '" + s + "'"};
  return *st;
}

domain::run_key run_of(const json& b) {
  return {str(b, "project"), build_number(b), str(b, "run")};
}

request decode_command(std::string_view verb, const json& b) {
  if (verb == "put_project")
    return put_project{str(b, "name"), str(b, "yaml")};
  if (verb == "delete_project")
    return delete_project{str(b, "name")};
  if (verb == "set_secret")
    return set_secret{str(b, "project"), str(b, "key"), str(b, "value")};
  if (verb == "remove_secret")
    return remove_secret{str(b, "project"), str(b, "key")};
  if (verb == "trigger_build")
    return trigger_build{str(b, "project"), str(b, "trigger"), params(b), str(b, "ref", false),
                         str(b, "sha", false), str(b, "reason", false),
                         static_cast<std::int32_t>(b.value("priority", 0))};
  if (verb == "cancel_build")
    return cancel_build{str(b, "project"), build_number(b)};
  if (verb == "rerun_build")
    return rerun_build{str(b, "project"), build_number(b), b.value("failed_only", false)};
  if (verb == "cancel_run")
    return cancel_run{run_of(b)};
  if (verb == "pin_build")
    return pin_build{str(b, "project"), build_number(b), str(b, "name", false),
                     str(b, "reason", false)};
  if (verb == "unpin_build")
    return unpin_build{str(b, "project"), build_number(b), str(b, "reason", false)};
  if (verb == "register_worker")
    return register_worker{str(b, "name"), strings(b, "tags"),
                           static_cast<std::uint32_t>(num(b, "concurrency", 1)),
                           b.value("host", json::object()).dump()};
  if (verb == "enlist_worker")
    return enlist_worker{str(b, "name")};
  if (verb == "delist_worker")
    return delist_worker{str(b, "name")};
  if (verb == "delete_worker")
    return delete_worker{str(b, "name")};
  if (verb == "worker_checkin")
  {
    worker_checkin c{str(b, "name"), str(b, "token"), b.value("accepting", true), std::nullopt};
    if (b.contains("active")) {
      auto ids = strings(b, "active");
      c.active.emplace(ids.begin(), ids.end());
    }
    // Never longer than a gateway waits for a core's answer.
    c.hold = std::chrono::milliseconds{static_cast<std::int64_t>(
      std::min<std::uint64_t>(num(b, "hold_ms", 0), max_checkin_hold.count()))};
    for (auto& id : strings(b, "known_runs"))
      c.known_runs.insert(id);
    for (auto& id : strings(b, "known_stopping"))
      c.known_stopping.insert(id);
    return c;
  }
  if (verb == "report_run")
    return report_run{run_of(b), str(b, "worker"), status_of(str(b, "status")),
                      static_cast<std::int32_t>(b.value("exit_code", 0)),
                      str(b, "message", false), num(b, "console_size", 0)};
  if (verb == "store_artifact")
    return store_artifact{run_of(b), str(b, "worker"), str(b, "path"), num(b, "size", 0),
                          str(b, "sha256", false)};
  if (verb == "report_tests") {
    report_tests r{run_of(b), str(b, "worker"), str(b, "suite", false), {}};
    for (auto& t : b.value("results", json::array()))
      r.results.push_back({str(t, "name"), status_of(str(t, "status")), num(t, "duration_ms", 0),
                           str(t, "message", false)});
    return r;
  }
  if (verb == "issue_token")
    return issue_token{str(b, "id", false), str(b, "label", false), str(b, "scope"),
                       str(b, "project", false), str(b, "token", false)};
  if (verb == "revoke_token")
    return revoke_token{str(b, "id")};
  throw bad_request{"unknown command '" + std::string{verb} + "'"};
}

query decode_query(std::string_view verb, const json& b) {
  if (verb == "list_projects")
    return list_projects{};
  if (verb == "get_project")
    return get_project{str(b, "name")};
  if (verb == "list_builds")
    return list_builds{str(b, "project"), num(b, "limit", 20),
                       static_cast<std::uint32_t>(num(b, "before", 0))};
  if (verb == "get_build")
    return get_build{str(b, "project"), build_number(b)};
  if (verb == "get_run")
    return get_run{run_of(b)};
  if (verb == "list_workers")
    return list_workers{};
  if (verb == "get_queue")
    return get_queue{};
  if (verb == "authenticate")
    return authenticate{str(b, "token")};
  if (verb == "list_tokens")
    return list_tokens{};
  if (verb == "get_stats")
    return get_stats{};
  throw bad_request{"unknown query '" + std::string{verb} + "'"};
}

std::int64_t ms(std::int64_t ns) { return ns / 1'000'000; }

json render(const project_info& p) {
  return {{"name", p.name},
          {"definition_version", p.definition_version},
          {"content_sha256", p.content_sha256},
          {"description", p.description},
          {"synchronous_builds", p.synchronous_builds},
          {"secrets", p.secret_keys},
          {"last_build", p.last_build},
          {"created_ms", ms(p.created_ns)},
          {"updated_ms", ms(p.updated_ns)},
          {"last_build_status", p.last_status},
          {"last_build_created_ms", ms(p.last_created_ns)},
          {"last_build_completed_ms", ms(p.last_completed_ns)}};
}

json parsed_or_text(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

json render(const reply& r) {
  struct {
    json operator()(const receipt& x) { return {{"duplicate", x.duplicate}}; }
    json operator()(const build_ref& x) {
      return {{"project", x.project}, {"build", x.build}, {"runs", x.runs}};
    }
    json operator()(const worker_token& x) { return {{"token", x.token}}; }
    json operator()(const webhook_ack& x) { return {{"builds", x.builds}, {"note", x.note}}; }
    json operator()(const notification_claim& x) { return {{"attempt", x.attempt}}; }
    json operator()(const api_token& x) { return {{"id", x.id}, {"token", x.token}}; }
    json operator()(const console_ack& x) {
      return {{"size", x.size}, {"new_from", x.new_from}, {"added", x.added.size()}};
    }
    json operator()(const checkin_reply& x) {
      auto runs = json::array();
      for (auto& h : x.runs)
        runs.push_back({{"run_id", h.run.path()}, {"rundef", parsed_or_text(h.rundef)}});
      auto cancel = json::array();
      for (auto& k : x.cancel)
        cancel.push_back(k.path());
      json out{{"runs", std::move(runs)}, {"cancel", std::move(cancel)}};
      if (x.waited)
        out["waited"] = true;
      return out;
    }
  } visitor;
  return std::visit(visitor, r);
}

global_seq seq_of(const reply& r) {
  return std::visit([](auto& x) {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, checkin_reply> || std::is_same_v<T, console_ack>)
      return global_seq{};  // these commit no event of their own
    else
      return x.seq;
  }, r);
}

json render(const query_result& q) {
  struct {
    json operator()(const std::vector<project_info>& x) {
      auto out = json::array();
      for (auto& p : x)
        out.push_back(render(p));
      return out;
    }
    json operator()(const project_detail& x) {
      auto out = render(x.info);
      out["yaml"] = x.yaml;
      auto triggers = json::array();
      for (auto& t : x.triggers)
        triggers.push_back({{"name", t.name}, {"type", t.type}, {"params", t.params}});
      out["triggers"] = std::move(triggers);
      out["cron_slots"] = x.cron_slots;
      out["git_refs"] = x.git_refs;
      return out;
    }
    json operator()(const std::vector<domain::build_summary>& x) {
      auto out = json::array();
      for (auto& b : x)
        out.push_back(build_json(b));
      return out;
    }
    json operator()(const domain::build_summary& x) { return build_json(x); }
    json operator()(const run_detail& x) {
      auto out = run_json(x.summary, x.state.project, x.state.build);
      out["message"] = x.state.message;
      out["rundef"] = parsed_or_text(x.state.rundef);  // holds no secret (build_plan)
      if (!x.state.console_object.empty())
        out["console_object"] = x.state.console_object;
      auto artifacts = json::array();
      for (auto& a : x.state.artifacts)
        artifacts.push_back({{"path", a.path}, {"size", a.size}, {"sha256", a.sha256},
                             {"expired", x.state.artifacts_expired}});
      out["artifacts"] = std::move(artifacts);
      auto tests = json::array();
      for (auto& suite : x.state.tests)
        for (auto& t : suite.results)
          tests.push_back({{"suite", suite.suite}, {"name", t.name},
                           {"status", kiln::to_string(t.status)},
                           {"duration_ms", t.duration_ms}, {"message", t.message}});
      out["tests"] = std::move(tests);
      return out;
    }
    json operator()(const std::vector<worker_info>& x) {
      auto out = json::array();
      for (auto& [w, last_checkin_ns] : x) {
        auto holds = json::array();
        for (auto& k : w.holds)
          holds.push_back(k.path());
        out.push_back({{"name", w.name},
                       {"tags", w.tags},
                       {"concurrency", w.concurrency},
                       {"enlisted", w.enlisted},
                       {"online", w.online},
                       {"host", parsed_or_text(w.host_json)},
                       {"runs", std::move(holds)},
                       {"last_checkin_ms", ms(last_checkin_ns)}});
      }
      return out;
    }
    json operator()(const domain::grant& x) {
      return {{"kind", x.holder == domain::grant::kind::worker ? "worker" : "token"},
              {"id", x.id},
              {"scope", x.scope},
              {"project", x.project}};
    }
    json operator()(const std::vector<domain::token_summary>& x) {
      auto out = json::array();
      for (auto& t : x)
        out.push_back({{"id", t.id},
                       {"label", t.label},
                       {"scope", t.scope},
                       {"project", t.project},
                       {"issued_ms", ms(t.issued_ns)}});
      return out;
    }
    json operator()(const console_text& x) {
      return {{"offset", x.offset}, {"size", x.size}, {"finished", x.finished}};
    }
    json operator()(const core_metrics& x) {
      return {{"seq", x.seq.value},
              {"queue_length", x.queue_length},
              {"runs_by_status", x.runs_by_status},
              {"workers_online", x.workers_online}};
    }
    json operator()(const std::vector<domain::waiting_run>& x) {
      auto out = json::array();
      for (auto& w : x)
        out.push_back({{"run_id", w.run.path()},
                       {"reason", domain::to_string(w.reason)},
                       {"detail", w.detail}});
      return out;
    }
    json operator()(const secret_value&) { return nullptr; }  // never leaves the core
    json operator()(const std::vector<domain::run_key>& x) {
      auto out = json::array();
      for (auto& k : x)
        out.push_back(k.path());
      return out;
    }
    json operator()(const std::vector<domain::expiring_run>& x) {
      auto out = json::array();
      for (auto& e : x)
        out.push_back({{"run_id", e.run.path()}, {"reason", e.reason}});
      return out;
    }
    json operator()(const std::vector<domain::due_notification>& x) {
      auto out = json::array();
      for (auto& n : x)
        out.push_back({{"project", n.project}, {"build", n.build}, {"id", n.id}, {"kind", n.kind}});
      return out;
    }
    json operator()(const std::vector<git_poller_info>& x) {
      auto out = json::array();
      for (auto& g : x)
        out.push_back({{"project", g.project}, {"trigger", g.trigger}, {"urls", g.urls},
                       {"ref_globs", g.ref_globs}, {"interval_s", g.interval_s}, {"seen", g.seen}});
      return out;
    }
  } visitor;
  return std::visit(visitor, q);
}

} // namespace

struct core_service::impl {
  bus::bus& b;
  core& c;
  storage::event_log& log;
  std::unique_ptr<bus::subscription> commands;
  std::unique_ptr<bus::subscription> queries;
  std::unique_ptr<bus::subscription> seen;

  // Whether this core publishes the events, and what it left to the core
  // that did (when this core copied each).
  std::mutex publish_mu;
  bool publishing = true;
  std::deque<std::pair<std::chrono::steady_clock::time_point, global_seq>> left;

  void publish(const logged_commit& commit);
  // Drops from `left` what the previous leader surely published.
  void forget_old(std::chrono::steady_clock::time_point now);

  void handle(const bus::message& m);
  // Appends a run's console bytes, tells followers, then calls `then`.
  void console_append(const json& body, std::string_view bytes, const request_context& ctx,
                      std::function<void(result<console_ack>)> then);
  std::string events_page(const json& body);
};

namespace {

constexpr std::size_t max_events_page = 512;

} // namespace

// /v1/events reads its history here: up to `limit` matching commits after
// `after`, scanning at most a page of the log, and where the scan stopped
// (so that a rare filter still makes progress). The whole reply, built as
// text: the commits are JSON lines already.
std::string core_service::impl::events_page(const json& b) {
  auto after = num(b, "after", 0);
  auto limit = std::min<std::uint64_t>(num(b, "limit", 100), max_events_page);
  auto filter = str(b, "filter", false);
  auto commits = log.read_all(global_seq{after}, max_events_page);
  if (!commits)
    throw std::runtime_error(commits.error().message);
  std::string list;
  std::size_t matched = 0;
  auto scanned = after;
  for (auto& c : *commits) {
    if (matched >= limit)
      break;
    scanned = c.seq.value;
    bool match = filter.empty();
    for (auto& e : c.body.events)
      match = match || bus::subject_matches(filter, subjects::event_path(c.body.stream, type_name(e)));
    if (match) {
      list += matched++ ? "," : "";
      list += to_json_line(c);
    }
  }
  return subjects::frame(R"({"ok":true,"seq":0})",
                         R"({"commits":[)" + list + R"(],"scanned":)" + std::to_string(scanned)
                           + R"(,"head":)" + std::to_string(log.last_seq().value) + "}");
}

void core_service::impl::console_append(const json& body, std::string_view bytes,
                                        const request_context& ctx,
                                        std::function<void(result<console_ack>)> then) {
  append_console req{run_of(body), str(body, "worker"), num(body, "offset", 0), std::string{bytes}};
  auto key = req.run;
  // The answer may come after this service is gone (the console store
  // answers from its own thread): the bus, which outlives it, is all it uses.
  c.submit(std::move(req), ctx,
           [bus = &b, key, then = std::move(then)](result<reply> r) {
             if (!r)
               return then(r.error());
             auto& ack = std::get<console_ack>(*r);
             // Followers first, then the worker: a follower never lags an ack.
             if (!ack.added.empty())
               bus->publish(subjects::console_subject(key.project, key.build, key.name),
                         subjects::frame(json{{"run", key.path()},
                                              {"offset", ack.new_from},
                                              {"size", ack.size}}.dump(),
                                         ack.added));
             then(std::move(ack));
           });
}

void core_service::impl::handle(const bus::message& m) {
  if (m.reply_to.empty())
    return;  // nobody to answer: requests only
  constexpr std::string_view cmd = "kiln.cmd.", qry = "kiln.qry.";
  std::string_view subject = m.subject;
  // A request slower than a gateway waits (15 s by default) is answered to
  // nobody: the operator hears of the slow ones.
  // Answers may come after this service is gone (a core finishing what it
  // was asked while it stops): the bus, which outlives it, is all they use.
  auto respond = [bus = &b, to = m.reply_to, subject = std::string{m.subject},
                  t0 = std::chrono::steady_clock::now()](std::string out) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (ms > std::chrono::seconds{5})
      spdlog::warn("core request=slow subject={} ms={} answer=\"{}\"", subject, ms.count(), out.substr(0, 200));
    bus->publish(to, std::move(out));
  };
  try {
    auto [head, bytes] = subjects::unframe(m.data);
    auto j = json::parse(head, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw bad_request{"the request is not a JSON object"};
    auto body = j.value("body", json::object());
    if (!body.is_object())
      throw bad_request{"'body' must be an object"};
    body.erase("console_size");  // this core's own figure, never a caller's
    request_context ctx{j.value("principal", std::string{"anonymous"}),
                        j.value("command_id", std::string{})};
    // Answered once this core holds that commit (a reaction to an event).
    global_seq min_seq{j.value("min_seq", std::uint64_t{0})};
    auto submit = [this, respond, min_seq](request r, request_context ctx) {
      c.submit(std::move(r), std::move(ctx), [respond](result<kiln::core::reply> done) {
        if (!done)
          return respond(fail(done.error().code, done.error().message));
        respond(succeed(seq_of(*done), render(*done)));
      }, min_seq);
    };
    auto run_command = [submit](std::string_view verb, const json& body, request_context ctx) {
      submit(decode_command(verb, body), std::move(ctx));
    };
    if (subject == "kiln.cmd.append_console") {
      console_append(body, bytes, ctx, [respond](result<console_ack> a) {
        if (!a)
          return respond(fail(a.error().code, a.error().message));
        respond(succeed({}, {{"size", a->size}, {"new_from", a->new_from}, {"added", a->added.size()}}));
      });
    } else if (subject == "kiln.cmd.receive_webhook") {
      // The payload is the body exactly as signed: it goes as bytes.
      submit(receive_webhook{str(body, "kind"), str(body, "project"), str(body, "trigger", false),
                             body.value("headers", std::map<std::string, std::string>{}),
                             std::string{bytes}},
             std::move(ctx));
    } else if (subject == "kiln.cmd.report_run" && !bytes.empty()) {
      // A final status with the console's last bytes: they are written
      // first, so that a follower has them all when the run ends. A retry
      // after the run ended finds the console closed and reports again.
      auto tail = body;
      tail["offset"] = num(body, "console_offset", 0);
      console_append(tail, bytes, ctx, [run_command, body, ctx, respond](result<console_ack> a) mutable {
        if (!a && a.error().code != "finished")
          return respond(fail(a.error().code, a.error().message));
        if (a)
          body["console_size"] = a->size;
        run_command("report_run", body, ctx);
      });
    } else if (subject.substr(0, cmd.size()) == cmd) {
      run_command(subject.substr(cmd.size()), body, std::move(ctx));
    } else if (subject == "kiln.qry.events") {
      respond(events_page(body));
    } else if (subject == "kiln.qry.read_console") {
      read_console q{run_of(body), num(body, "offset", 0),
                     std::min<std::size_t>(num(body, "max", 1 << 20), 1 << 20)};
      c.ask(std::move(q), min_seq,
            [respond](result<query_result> r) {
              if (!r)
                return respond(fail(r.error().code, r.error().message));
              auto& t = std::get<console_text>(*r);
              // The result in the head, the bytes after it.
              json head{{"ok", true},
                        {"seq", 0},
                        {"result", {{"offset", t.offset},
                                    {"size", t.size},
                                    {"finished", t.finished},
                                    {"status", kiln::to_string(t.status)}}}};
              respond(subjects::frame(head.dump(), t.data));
            });
    } else if (subject.substr(0, qry.size()) == qry) {
      c.ask(decode_query(subject.substr(qry.size()), body), min_seq,
            [respond, min_seq](result<query_result> r) {
              if (!r)
                return respond(fail(r.error().code, r.error().message));
              respond(succeed(min_seq, render(*r)));
            });
    } else {
      throw bad_request{"no such subject " + std::string{subject}};
    }
  } catch (const bad_request& e) {
    respond(fail("bad_request", e.message));
  } catch (const json::exception& e) {
    respond(fail("bad_request", e.what()));
  } catch (const std::runtime_error& e) {
    respond(fail("io", e.what()));
  }
}

namespace {

// Older than JetStream's duplicate window, with a margin for clocks.
bool stale(const logged_commit& commit) {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  return now - commit.body.meta.time_unix_ns > std::chrono::nanoseconds{std::chrono::seconds{90}}.count();
}

} // namespace

// The lease changes hands within ttl + a renewal period (5 s + 1 s): the
// commits a dead leader may have left unpublished are younger than this.
constexpr auto republish_window = std::chrono::seconds{10};

void core_service::impl::forget_old(std::chrono::steady_clock::time_point now) {
  while (!left.empty() && now - left.front().first > republish_window)
    left.pop_front();
}

void core_service::impl::publish(const logged_commit& commit) {
  auto line = to_json_line(commit);
  // With the chain hash: a log started afresh reuses sequences.
  auto id = "kiln-evt-" + std::to_string(commit.seq.value) + "-" + to_hex(commit.hash).substr(0, 16) + "-";
  auto& events = commit.body.events;
  for (std::size_t i = 0; i < events.size(); ++i)
    b.publish_once(subjects::event_subject(commit.body.stream, type_name(events[i])), line,
                   id + std::to_string(i));
}

// The check-ins a core answered while another led, passed on to the one
// that leads (core::share_checkins); each core takes them, since the
// leader may change.
constexpr std::string_view seen_subject = "kiln.core.seen";

core_service::core_service(bus::bus& b, core& c, storage::event_log& log, bool publishing)
    : impl_(std::make_unique<impl>(b, c, log)) {
  impl_->publishing = publishing;
  auto serve = [p = impl_.get()](const bus::message& m) { p->handle(m); };
  impl_->commands = b.subscribe("kiln.cmd.>", serve, "cores");
  impl_->queries = b.subscribe("kiln.qry.>", serve, "cores");
  impl_->seen = b.subscribe(std::string{seen_subject}, [&c](const bus::message& m) {
    auto j = json::parse(m.data, nullptr, false);
    if (!j.is_object() || !j.contains("worker") || !j["worker"].is_string())
      return spdlog::warn("core seen=unreadable data=\"{}\"", m.data.substr(0, 200));
    c.worker_seen(j["worker"].get<std::string>(), j.value("accepting", true));
  });
  c.share_checkins([&b](const std::string& worker, bool accepting) {
    b.publish(std::string{seen_subject}, json{{"worker", worker}, {"accepting", accepting}}.dump());
  });
  // Every committed event, for gateways (/v1/events, follow streams) and
  // outside subscribers: one message per event on its subject, the whole
  // commit as JSON (so a reader sees its sequence and siblings). Published
  // once the core's read model holds it, so that a reaction to an event
  // never reads a state from before it.
  //
  // In a cluster the leading core publishes (set_publishing): every core
  // publishing every commit cost each gateway a copy per core. The message
  // id (the commit's sequence and hash, the same on every core, and the
  // event's place in it) lets KILN_EVENTS keep each event once when two
  // publish it (at a change of leader). JetStream forgets ids after its
  // duplicate window (2 min), so a core catching up after longer does not
  // publish what was published long ago.
  //
  // Published from the core's thread as it applies each commit: through a
  // log subscription of its own, each commit cost a thread woken, a read
  // from RocksDB and a wait for the read model.
  auto replica = log.replica();
  auto after = log.last_seq();
  c.on_applied([p = impl_.get(), replica, after](const logged_commit& commit) {
    if (commit.seq <= after || (replica && stale(commit)))
      return;
    std::lock_guard lock{p->publish_mu};
    if (!p->publishing) {
      auto now = std::chrono::steady_clock::now();
      p->left.emplace_back(now, commit.seq);
      p->forget_old(now);
      return;
    }
    p->publish(commit);
  });
}

void core_service::set_publishing(bool publishing) {
  auto& p = *impl_;
  std::lock_guard lock{p.publish_mu};
  if (p.publishing == publishing)
    return;
  p.publishing = publishing;
  p.forget_old(std::chrono::steady_clock::now());
  if (!publishing || p.left.empty())
    return;
  auto from = global_seq{p.left.front().second.value - 1};
  auto last = p.left.back().second;
  p.left.clear();
  std::size_t again = 0;
  while (from < last) {
    auto commits = p.log.read_all(from, 1024);
    if (!commits || commits->empty())
      break;
    for (auto& c : *commits)
      if (c.seq <= last) {
        p.publish(c);
        ++again;
      }
    from = commits->back().seq;
  }
  spdlog::info("core events=publishing republished={} up_to_seq={}", again, last.value);
}

core_service::~core_service() {
  if (impl_) {
    impl_->c.share_checkins(nullptr);
    impl_->c.on_applied(nullptr);
    impl_->seen.reset();
    impl_->commands.reset();
    impl_->queries.reset();
  }
}

} // namespace kiln::core
