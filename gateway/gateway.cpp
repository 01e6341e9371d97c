// The route table and its handlers. Each handler is thin: parse, authorise
// (done before it runs, from the table), one bus request, render.
#include "gateway/gateway.hpp"

#include "events/base64.hpp"

#include "gateway/artifact_store.hpp"
#include "gateway/badge.hpp"
#include "gateway/core_client.hpp"
#include "gateway/live_hub.hpp"
#include "gateway/live_streams.hpp"
#include "gateway/metrics.hpp"
#include "gateway/ui_assets.hpp"
#include "gateway/url.hpp"
#include "events/commit.hpp"
#include "events/sha256.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace kiln::gateway {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

enum class access { open, read, trigger, admin, worker };

int rank(std::string_view scope) {
  return scope == "admin" ? 3 : scope == "trigger" ? 2 : scope == "read" ? 1 : 0;
}
int rank(access a) {
  return a == access::admin ? 3 : a == access::trigger ? 2 : a == access::read ? 1 : 0;
}

// Who is asking, as the core's authenticate query said.
struct identity {
  bool anonymous = true;
  bool worker = false;
  std::string id;
  std::string scope;
  std::string project;
};

struct route;

struct call {
  gateway::impl& gw;
  const route& r;
  http_request req;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;
  identity who;
  responder respond;

  const std::string& param(const char* name) const { return params.at(name); }
  // Answered by a core holding every commit this gateway has heard of: a
  // client that saw a run end (a follow, an event) and asks again, maybe
  // through another gateway, is not told it still runs by a core whose copy
  // of the log is a commit behind.
  caller as_caller() const;
  void fail(const error& e) const { respond(json_error(http_status(e.code), e.code, e.message)); }
  void fail(int status, std::string_view code, std::string_view message) const {
    respond(json_error(status, code, message));
  }
  void ok(const json& body, int status = 200) const {
    ok_text(body.dump(-1, ' ', false, json::error_handler_t::replace), status);
  }
  // A body that is JSON text already (the core's result, passed on).
  void ok_text(std::string body, int status = 200) const {
    body += '\n';
    respond({status, "application/json", std::move(body), {}, {}});
  }
};
using call_ptr = std::shared_ptr<call>;

struct route {
  std::string method;
  std::vector<std::string> pattern;  // "{name}" captures one segment, "{path*}" the rest
  access need;
  void (*fn)(const call_ptr&);
  std::string name;  // the metrics label
};

std::optional<std::map<std::string, std::string>> match(const route& r,
                                                        const std::vector<std::string>& segs) {
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < r.pattern.size(); ++i) {
    auto& p = r.pattern[i];
    if (p.size() > 3 && p.ends_with("*}")) {
      if (i >= segs.size())
        return std::nullopt;
      std::string rest;
      for (std::size_t k = i; k < segs.size(); ++k)
        rest += (k > i ? "/" : "") + segs[k];
      out[p.substr(1, p.size() - 3)] = rest;
      return out;
    }
    if (i >= segs.size())
      return std::nullopt;
    if (p.front() == '{')
      out[p.substr(1, p.size() - 2)] = segs[i];
    else if (p != segs[i])
      return std::nullopt;
  }
  if (segs.size() != r.pattern.size())
    return std::nullopt;
  return out;
}

std::vector<std::string> split(std::string_view pattern) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start < pattern.size()) {
    auto end = pattern.find('/', start);
    if (end == std::string_view::npos)
      end = pattern.size();
    out.emplace_back(pattern.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// A result the core answered, or its error, rendered.
core_callback render(const call_ptr& c, int status = 200,
                     std::function<json(const core_answer&)> pick = {}) {
  return [c, status, pick = std::move(pick)](result<core_answer> r) {
    if (!r)
      return c->fail(r.error());
    if (pick)
      return c->ok(pick(*r), status);
    c->ok_text(r->payload, status);
  };
}

std::optional<std::uint32_t> build_number(const std::string& s) {
  auto n = to_u64(s);
  if (!n || *n == 0 || *n > UINT32_MAX)
    return std::nullopt;
  return static_cast<std::uint32_t>(*n);
}

// A name used as one folder of the artifact store.
bool safe_component(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos
         && s.find('\\') == std::string_view::npos && s.find('\0') == std::string_view::npos;
}

// NATS-style: tokens (bus::valid_token) or '*', and '>' only last.
bool valid_pattern(std::string_view p) {
  while (true) {
    auto dot = p.find('.');
    auto tok = p.substr(0, dot);
    if (dot == std::string_view::npos)
      return tok == ">" || tok == "*" || bus::valid_token(tok);
    if (tok != "*" && !bus::valid_token(tok))
      return false;
    p.remove_prefix(dot + 1);
  }
}

bool json_body(const call& c) {
  auto type = c.req.header("content-type");
  return c.req.body.empty() || type.empty() || type.starts_with("application/json");
}

std::optional<json> parse_json(const call_ptr& c) {
  if (!json_body(*c)) {
    c->fail(415, "unsupported_media_type", "send application/json");
    return std::nullopt;
  }
  if (c->req.body.empty())
    return json::object();
  auto j = json::parse(c->req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    c->fail(400, "bad_request", "the body is not a JSON object");
    return std::nullopt;
  }
  return j;
}

// {project, build} of a build route, or a 400 already sent.
std::optional<json> build_body(const call_ptr& c) {
  auto n = build_number(c->param("build"));
  if (!n) {
    c->fail(400, "bad_request", "'" + c->param("build") + "' is not a build number");
    return std::nullopt;
  }
  return json{{"project", c->param("project")}, {"build", *n}};
}

// {project, build, run} of a run route, or a 400 already sent.
std::optional<json> run_body(const call_ptr& c) {
  auto b = build_body(c);
  if (!b)
    return std::nullopt;
  if (!safe_component(c->param("run"))) {
    c->fail(400, "bad_request", "'" + c->param("run") + "' is not a run name");
    return std::nullopt;
  }
  (*b)["run"] = c->param("run");
  return b;
}

} // namespace

// ---------------------------------------------------------------------------

struct gateway::impl {
  gateway_options opts;
  std::shared_ptr<artifact_store> artifacts;  // null: this node takes no uploads
  core_client core;
  live_hub hub;
  request_metrics metrics;
  std::vector<route> routes;
  std::atomic<bool> draining{false};

  // Holds every open stream and long poll: nothing else keeps them alive.
  std::mutex live_mu;
  std::vector<std::shared_ptr<live_stream>> live;

  struct cached_identity {
    identity who;
    clock_type::time_point until;
  };
  std::mutex auth_mu;
  std::unordered_map<std::string, cached_identity> auth_cache;

  impl(bus::bus& b, gateway_options o)
    : opts(std::move(o)), core(b, opts.core_timeout),
      hub(b, std::min<std::chrono::milliseconds>(opts.heartbeat, std::chrono::milliseconds{250})) {
    // Ended streams are let go at the next tick.
    sweeper = hub.on_tick([this] { open_streams(); });
  }
  ~impl() { hub.remove(sweeper); }
  std::uint64_t sweeper = 0;

  void handle(http_request req, responder respond);
  void authorise(const call_ptr& c);
  void admit(const call_ptr& c, const identity& who);
  std::size_t open_streams() {
    std::lock_guard lock{live_mu};
    std::erase_if(live, [](auto& s) { return s->ended(); });
    return live.size();
  }
  // False (and 429 or 503 sent) when no new stream may start.
  bool add_stream(const call_ptr& c, const std::shared_ptr<live_stream>& s) {
    if (draining) {
      c->fail(503, "draining", "this node is shutting down; use another");
      return false;
    }
    if (open_streams() >= opts.max_streams) {
      c->fail(429, "too_many", "too many open streams on this node; retry later");
      return false;
    }
    std::lock_guard lock{live_mu};
    live.push_back(s);
    return true;
  }
  stream_limits limits() const { return {opts.stream_buffer_bytes, opts.heartbeat, opts.follow_recheck}; }
};

namespace {

// Counts each request once it is answered (or its stream starts).
class metered_sink final : public responder::sink {
 public:
  metered_sink(responder inner, request_metrics& m, std::string route)
    : inner_(std::move(inner)), metrics_(m), route_(std::move(route)) {}
  void send(http_response r) override {
    metrics_.record(route_, r.status, clock_type::now() - start_);
    inner_(std::move(r));
  }
  std::shared_ptr<body_stream> stream(http_response head) override {
    metrics_.record(route_, head.status, clock_type::now() - start_);
    return inner_.stream(std::move(head));
  }

 private:
  responder inner_;
  request_metrics& metrics_;
  std::string route_;
  clock_type::time_point start_ = clock_type::now();
};

// ---- health ----

void healthz(const call_ptr& c) { c->ok({{"status", "ok"}}); }

void readyz(const call_ptr& c) {
  if (c->gw.draining)
    return c->fail(503, "draining", "this node is shutting down; use another");
  c->ok({{"status", "ready"}});
}

void metrics(const call_ptr& c) {
  c->gw.core.query("get_stats", json::object(), c->as_caller(), [c](result<core_answer> r) {
    std::string out = c->gw.metrics.render();
    out += "# HELP kiln_open_streams Console follows and event feeds open on this gateway.\n"
           "# TYPE kiln_open_streams gauge\n"
           "kiln_open_streams " + std::to_string(c->gw.open_streams()) + "\n";
    out += "# HELP kiln_gateway_draining 1 while this gateway drains.\n"
           "# TYPE kiln_gateway_draining gauge\n"
           "kiln_gateway_draining " + std::string{c->gw.draining ? "1" : "0"} + "\n";
    if (r) {
      auto& s = r->result();
      out += "# HELP kiln_event_log_seq The last commit the core's projections hold.\n"
             "# TYPE kiln_event_log_seq gauge\n"
             "kiln_event_log_seq " + std::to_string(s.value("seq", 0ull)) + "\n";
      out += "# HELP kiln_queue_length Runs waiting for a worker.\n"
             "# TYPE kiln_queue_length gauge\n"
             "kiln_queue_length " + std::to_string(s.value("queue_length", 0ull)) + "\n";
      out += "# HELP kiln_workers_online Workers checking in.\n"
             "# TYPE kiln_workers_online gauge\n"
             "kiln_workers_online " + std::to_string(s.value("workers_online", 0ull)) + "\n";
      out += "# HELP kiln_runs Runs by status.\n# TYPE kiln_runs gauge\n";
      auto by_status = s.value("runs_by_status", json::object());
      for (auto& [status, n] : by_status.items())
        out += "kiln_runs{status=\"" + status + "\"} " + std::to_string(n.get<std::uint64_t>()) + "\n";
    } else {
      out += "# core unavailable: " + r.error().message + "\n";
    }
    c->respond({200, "text/plain; version=0.0.4", std::move(out), {}, {}});
  });
}

// ---- the web UI (gateway/ui) ----

// Its files are built in; a browser revalidates them on each load
// (no-cache) and gets a 304 while they are unchanged.
void serve_asset(const call_ptr& c, std::string_view path) {
  for (auto& a : ui_assets()) {
    if (a.path != path)
      continue;
    std::vector<std::pair<std::string, std::string>> headers{
      {"ETag", std::string{a.etag}},
      {"Cache-Control", "no-cache"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Content-Security-Policy",
       "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'"}};
    if (c->req.header("if-none-match") == a.etag)
      return c->respond({304, std::string{a.content_type}, {}, std::move(headers), {}});
    return c->respond({200, std::string{a.content_type}, std::string{a.body},
                       std::move(headers), {}});
  }
  c->fail(404, "not_found", "no such file of the web UI: " + std::string{path});
}

void ui_index(const call_ptr& c) { serve_asset(c, "index.html"); }
void ui_file(const call_ptr& c) { serve_asset(c, c->param("path")); }

// Who the request's token is: the UI shows what its holder may do.
void whoami(const call_ptr& c) {
  auto& w = c->who;
  if (w.anonymous)
    return c->ok({{"anonymous", true}, {"scope", "read"}, {"project", ""}});
  c->ok({{"anonymous", false}, {"kind", w.worker ? "worker" : "token"}, {"id", w.id},
         {"scope", w.scope}, {"project", w.project}});
}

// The project's last build, as an SVG badge for a README.
void badge(const call_ptr& c) {
  c->gw.core.query("list_builds", {{"project", c->param("project")}, {"limit", 1}},
                   c->as_caller(), [c](result<core_answer> r) {
                     if (!r)
                       return c->fail(r.error());
                     auto& builds = r->result();
                     std::string status;
                     if (builds.is_array() && !builds.empty())
                       status = builds[0].value("status", "");
                     auto label = c->query.count("label") ? c->query.at("label") : "build";
                     c->respond({200, "image/svg+xml", status_badge(label.substr(0, 40), status),
                                 {{"Cache-Control", "no-cache, max-age=0"}}, {}});
                   });
}

// ---- projects ----

void put_project(const call_ptr& c) {
  auto type = c->req.header("content-type");
  if (!type.empty() && type.find("yaml") == std::string_view::npos
      && !type.starts_with("text/plain"))
    return c->fail(415, "unsupported_media_type",
                   "send the definition as application/yaml (or text/plain), not " + std::string{type});
  auto name = c->param("project");
  c->gw.core.command("put_project", {{"name", name}, {"yaml", c->req.body}}, c->as_caller(),
                     render(c, 200, [name](const core_answer& a) {
                       return json{{"project", name}, {"seq", a.seq},
                                   {"changed", !a.result().value("duplicate", false) && a.seq > 0}};
                     }));
}

void list_projects(const call_ptr& c) {
  c->gw.core.query("list_projects", json::object(), c->as_caller(), render(c));
}

void get_project(const call_ptr& c) {
  c->gw.core.query("get_project", {{"name", c->param("project")}}, c->as_caller(), render(c));
}

void delete_project(const call_ptr& c) {
  c->gw.core.command("delete_project", {{"name", c->param("project")}}, c->as_caller(),
                     render(c, 200, [c](const core_answer&) {
                       return json{{"project", c->param("project")}, {"deleted", true}};
                     }));
}

void put_secret(const call_ptr& c) {
  c->gw.core.command("set_secret",
                     {{"project", c->param("project")}, {"key", c->param("key")},
                      {"value", c->req.body}},
                     c->as_caller(), render(c, 200, [c](const core_answer&) {
                       return json{{"project", c->param("project")}, {"key", c->param("key")}};
                     }));
}

void delete_secret(const call_ptr& c) {
  c->gw.core.command("remove_secret", {{"project", c->param("project")}, {"key", c->param("key")}},
                     c->as_caller(), render(c, 200, [c](const core_answer&) {
                       return json{{"project", c->param("project")}, {"key", c->param("key")},
                                   {"deleted", true}};
                     }));
}

// ---- builds ----

void trigger_build(const call_ptr& c) {
  auto body = parse_json(c);
  if (!body)
    return;
  (*body)["project"] = c->param("project");
  c->gw.core.command("trigger_build", *body, c->as_caller(), render(c, 201));
}

void list_builds(const call_ptr& c) {
  json body{{"project", c->param("project")}};
  for (auto key : {"limit", "before"})
    if (auto it = c->query.find(key); it != c->query.end()) {
      auto n = to_u64(it->second);
      if (!n)
        return c->fail(400, "bad_request", std::string{"'"} + key + "' must be a number");
      body[key] = *n;
    }
  c->gw.core.query("list_builds", body, c->as_caller(), render(c));
}

void get_build(const call_ptr& c) {
  if (auto b = build_body(c))
    c->gw.core.query("get_build", *b, c->as_caller(), render(c));
}

void cancel_build(const call_ptr& c) {
  if (auto b = build_body(c))
    c->gw.core.command("cancel_build", *b, c->as_caller(), render(c, 202, [b](const core_answer&) {
                         return json{{"project", (*b)["project"]}, {"build", (*b)["build"]},
                                     {"cancel_requested", true}};
                       }));
}

// Pinned (or promoted, with a name) builds keep their artifacts.
void pin_build(const call_ptr& c) {
  auto b = build_body(c);
  if (!b)
    return;
  if (!c->req.body.empty()) {
    auto body = parse_json(c);
    if (!body)
      return;
    (*b)["name"] = body->value("name", std::string{});
    (*b)["reason"] = body->value("reason", std::string{});
  }
  c->gw.core.command("pin_build", *b, c->as_caller(), render(c, 200, [b](const core_answer&) {
                       auto out = json{{"project", (*b)["project"]}, {"build", (*b)["build"]},
                                       {"pinned", true}};
                       if (!b->value("name", std::string{}).empty())
                         out["promoted_as"] = (*b)["name"];
                       return out;
                     }));
}

void unpin_build(const call_ptr& c) {
  if (auto b = build_body(c))
    c->gw.core.command("unpin_build", *b, c->as_caller(), render(c, 200, [b](const core_answer&) {
                         return json{{"project", (*b)["project"]}, {"build", (*b)["build"]},
                                     {"pinned", false}};
                       }));
}

void rerun_build(const call_ptr& c) {
  auto b = build_body(c);
  if (!b)
    return;
  (*b)["failed_only"] = c->query.count("failed") && c->query["failed"] != "0";
  c->gw.core.command("rerun_build", *b, c->as_caller(), render(c, 201));
}

// ---- runs ----

void get_run_part(const call_ptr& c, const char* part) {
  auto r = run_body(c);
  if (!r)
    return;
  c->gw.core.query("get_run", *r, c->as_caller(), render(c, 200, [part](const core_answer& a) {
                     if (!part) {
                       auto out = a.result();
                       out.erase("rundef");
                       return out;
                     }
                     return a.result().value(part, json{});
                   }));
}
void get_run(const call_ptr& c) { get_run_part(c, nullptr); }
void get_rundef(const call_ptr& c) { get_run_part(c, "rundef"); }
void list_artifacts(const call_ptr& c) { get_run_part(c, "artifacts"); }
void list_tests(const call_ptr& c) { get_run_part(c, "tests"); }

void cancel_run(const call_ptr& c) {
  if (auto r = run_body(c))
    c->gw.core.command("cancel_run", *r, c->as_caller(), render(c, 202, [r](const core_answer&) {
                         auto out = *r;
                         out["cancel_requested"] = true;
                         return out;
                       }));
}

artifact_key artifact_of(const json& run, const std::string& path) {
  return {run["project"].get<std::string>(), run["build"].get<std::uint32_t>(),
          run["run"].get<std::string>(), path};
}

// "bytes=a-b", "bytes=a-", "bytes=-n" against `size`: [first, last].
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(std::string_view h,
                                                                    std::uint64_t size) {
  if (!h.starts_with("bytes=") || h.find(',') != std::string_view::npos || size == 0)
    return std::nullopt;
  h.remove_prefix(6);
  auto dash = h.find('-');
  if (dash == std::string_view::npos)
    return std::nullopt;
  auto a = h.substr(0, dash), b = h.substr(dash + 1);
  if (a.empty()) {
    auto n = to_u64(b);
    if (!n || *n == 0)
      return std::nullopt;
    return std::make_pair(size - std::min(*n, size), size - 1);
  }
  auto first = to_u64(a);
  if (!first || *first >= size)
    return std::nullopt;
  std::uint64_t last = size - 1;
  if (!b.empty()) {
    auto l = to_u64(b);
    if (!l || *l < *first)
      return std::nullopt;
    last = std::min(*l, size - 1);
  }
  return std::make_pair(*first, last);
}

// The answer's head for `range` of an artifact of `size` bytes, or a 416.
std::optional<http_response> artifact_head(const call_ptr& c, const std::string& path,
                                           const json& art, std::uint64_t size,
                                           std::optional<byte_range>& span) {
  http_response res{200, content_type_for(path), {}, {{"accept-ranges", "bytes"}}, {}};
  res.headers.emplace_back("x-checksum-sha256", art.value("sha256", std::string{}));
  auto range = c->req.header("range");
  if (range.empty())
    return res;
  span = parse_range(range, size);
  if (!span) {
    auto e = json_error(416, "bad_range", "cannot serve range '" + std::string{range} + "'");
    e.headers.emplace_back("content-range", "bytes */" + std::to_string(size));
    c->respond(std::move(e));
    return std::nullopt;
  }
  res.status = 206;
  return res;
}

// Bytes from the store to a chunked answer, at the client's pace.
void proxy_artifact(const call_ptr& c, const artifact_key& key, http_response head,
                    std::optional<byte_range> span, std::uint64_t size) {
  if (span)
    head.headers.emplace_back("content-range", "bytes " + std::to_string(span->first) + "-"
                                                 + std::to_string(span->second) + "/"
                                                 + std::to_string(size));
  auto stream = c->respond.stream(std::move(head));
  if (!stream)
    return;
  auto limit = c->gw.opts.stream_buffer_bytes;
  // The socket gets S3's bytes in 1 MiB chunks.
  constexpr std::size_t chunk_bytes = 1 << 20;
  auto pending = std::make_shared<std::string>();
  pending->reserve(chunk_bytes);
  auto flush = [stream, limit, pending] {
    // A store thread may wait for a slow client; the socket is not held up.
    stream->wait_below(limit);
    bool ok = stream->write(std::exchange(*pending, {}));
    pending->reserve(chunk_bytes);
    return ok;
  };
  c->gw.artifacts->read(
    key, span,
    [pending, flush](std::string_view bytes) {
      pending->append(bytes);
      return pending->size() < chunk_bytes || flush();
    },
    [stream, key, pending, flush](status_result done) {
      if (!done)
        spdlog::warn("gateway artifact=proxy_failed path=\"{}\" error=\"{}\"", key.path,
                     done.error().message);
      else if (!pending->empty())
        flush();
      stream->finish();
    });
}

void get_artifact(const call_ptr& c) {
  auto r = run_body(c);
  if (!r)
    return;
  auto path = artifact_path(c->param("path"));
  if (!path)
    return c->fail(path.error());
  c->gw.core.query("get_run", *r, c->as_caller(), [c, r, p = *path](result<core_answer> a) {
    if (!a)
      return c->fail(a.error());
    for (auto& art : a->result().value("artifacts", json::array())) {
      if (art.value("path", std::string{}) != p)
        continue;
      if (art.value("expired", false))
        return c->fail(410, "expired", "artifact '" + p + "' was deleted by the project's retention policy");
      if (!c->gw.artifacts)
        return c->fail(404, "not_found", "this node keeps no artifacts");
      auto key = artifact_of(*r, p);
      auto where = c->gw.artifacts->locate(key);
      if (!where)
        return c->fail(where.error());
      if (!where->redirect.empty()) {
        http_response res{302, "application/json", {}, {{"location", where->redirect}}, {}};
        res.headers.emplace_back("x-checksum-sha256", art.value("sha256", std::string{}));
        return c->respond(std::move(res));
      }
      std::uint64_t size = art.value("size", std::uint64_t{0});
      std::optional<byte_range> span;
      if (where->proxied) {
        auto head = artifact_head(c, p, art, size, span);
        if (head)
          proxy_artifact(c, key, std::move(*head), span, size);
        return;
      }
      auto file = where->file;
      std::error_code ec;
      size = std::filesystem::file_size(file, ec);
      if (ec)
        return c->fail(404, "not_found", "artifact '" + p + "' is recorded but not stored here");
      auto head = artifact_head(c, p, art, size, span);
      if (!head)
        return;
      auto res = std::move(*head);
      if (!span) {
        res.file = file;
        return c->respond(std::move(res));
      }
      // Ranges are read into memory, so one is at most 8 MiB; Content-Range
      // says what was sent and a client asks again for the rest.
      auto last = std::min(span->second, span->first + 8 * 1024 * 1024 - 1);
      std::ifstream in{file, std::ios::binary};
      in.seekg(static_cast<std::streamoff>(span->first));
      res.body.resize(last - span->first + 1);
      in.read(res.body.data(), static_cast<std::streamsize>(res.body.size()));
      res.headers.emplace_back("content-range", "bytes " + std::to_string(span->first) + "-"
                                                  + std::to_string(last) + "/" + std::to_string(size));
      return c->respond(std::move(res));
    }
    c->fail(404, "not_found", "run has no artifact '" + p + "'");
  });
}

void get_console(const call_ptr& c) {
  auto r = run_body(c);
  if (!r)
    return;
  std::uint64_t offset = 0;
  if (auto it = c->query.find("offset"); it != c->query.end()) {
    auto n = to_u64(it->second);
    if (!n)
      return c->fail(400, "bad_request", "'offset' must be a number");
    offset = *n;
  }
  auto sse = c->req.header("accept").find("text/event-stream") != std::string_view::npos;
  if (auto last = c->req.header("last-event-id"); sse && !last.empty()) {
    auto n = to_u64(last);
    if (!n)
      return c->fail(400, "bad_request", "Last-Event-ID must be a byte offset");
    offset = *n;
  }
  auto follow = c->query.count("follow") && c->query["follow"] != "0";
  console_follow_request req{(*r)["project"], (*r)["build"], (*r)["run"], offset, sse,
                             follow, c->as_caller()};
  http_response head{200, sse ? "text/event-stream" : "text/plain; charset=utf-8", {}, {}, {}};
  head.headers.emplace_back("x-accel-buffering", "no");  // proxies: do not hold it back
  auto s = make_console_follower(c->gw.hub, c->gw.core, c->respond, std::move(head), req,
                                 c->gw.limits());
  if (c->gw.add_stream(c, s))
    s->start();
}

void get_events(const call_ptr& c) {
  event_feed_request req;
  req.who = c->as_caller();
  if (auto it = c->query.find("after"); it != c->query.end()) {
    auto n = to_u64(it->second);
    if (!n)
      return c->fail(400, "bad_request", "'after' must be a sequence number");
    req.after = *n;
  }
  if (auto last = c->req.header("last-event-id"); !last.empty()) {
    auto n = to_u64(last);
    if (!n)
      return c->fail(400, "bad_request", "Last-Event-ID must be a sequence number");
    req.after = *n;
  }
  if (auto it = c->query.find("filter"); it != c->query.end())
    req.filter = it->second;
  if (!c->who.project.empty()) {
    // A project's token sees its project's events only.
    if (req.filter.empty())
      req.filter = c->who.project + ".>";
    else if (!req.filter.starts_with(c->who.project + "."))
      return c->fail(403, "forbidden", "this token may only follow project '" + c->who.project + "'");
  }
  if (!req.filter.empty() && !valid_pattern(req.filter))
    return c->fail(400, "bad_request", "filter '" + req.filter + "' is not a subject pattern");
  auto start = [c](event_feed_request req) {
    http_response head{200, "text/event-stream", {}, {{"x-accel-buffering", "no"}}, {}};
    auto s = make_event_feed(c->gw.hub, c->gw.core, c->respond, std::move(head), std::move(req),
                             c->gw.limits());
    if (c->gw.add_stream(c, s))
      s->start();
  };
  // tail=N: from the last N commits of the log (a first look at a busy
  // server), unless the client resumes from an id of its own.
  auto tail = c->query.find("tail");
  if (tail == c->query.end() || !c->req.header("last-event-id").empty() || c->query.count("after"))
    return start(std::move(req));
  auto n = to_u64(tail->second);
  if (!n)
    return c->fail(400, "bad_request", "'tail' must be a number of commits");
  c->gw.core.query("events", {{"after", std::uint64_t{1} << 62}, {"limit", 1}}, req.who,
                   [c, start, req, n = *n](result<core_answer> r) mutable {
                     if (!r)
                       return c->fail(r.error());
                     auto head = r->result().value("head", std::uint64_t{0});
                     req.after = head > n ? head - n : 0;
                     start(std::move(req));
                   });
}

void get_queue(const call_ptr& c) {
  c->gw.core.query("get_queue", json::object(), c->as_caller(), render(c));
}

// ---- workers ----

void register_worker(const call_ptr& c) {
  auto body = parse_json(c);
  if (!body)
    return;
  c->gw.core.command("register_worker", *body, c->as_caller(), render(c, 201));
}

void worker_admin(const call_ptr& c, const char* verb, const char* done) {
  auto name = c->param("name");
  c->gw.core.command(verb, {{"name", name}}, c->as_caller(),
                     render(c, 200, [name, done](const core_answer&) {
                       return json{{"name", name}, {done, true}};
                     }));
}
void enlist_worker(const call_ptr& c) { worker_admin(c, "enlist_worker", "enlisted"); }
void delist_worker(const call_ptr& c) { worker_admin(c, "delist_worker", "delisted"); }
void delete_worker(const call_ptr& c) { worker_admin(c, "delete_worker", "deleted"); }

void list_workers(const call_ptr& c) {
  c->gw.core.query("list_workers", json::object(), c->as_caller(), render(c));
}

caller call::as_caller() const {
  caller c;
  c.principal = who.anonymous ? "anonymous" : (who.worker ? "worker:" : "token:") + who.id;
  c.command_id = std::string{req.header("idempotency-key")};
  c.min_seq = gw.hub.last_seq();
  return c;
}

// Whether a RunAssigned commit gives a run to `worker`.
bool assigns_to(const json& commit, const std::string& worker) {
  if (!commit.is_object())
    return true;  // unreadable: ask, as before
  auto assigned = event_data(commit, "RunAssigned");
  return assigned && assigned->value("worker", "") == worker;
}

// A worker's check-in held open until it has runs, the wait is over, or
// the node drains: each attempt held at a core until it has news for the
// worker; a RunAssigned or cancel heard brings another attempt when a core
// answered without holding.
class long_poll final : public live_stream, public std::enable_shared_from_this<long_poll> {
 public:
  // `active` and `stopping`: runs the worker already has, and those it is
  // already stopping; the poll does not end for them again.
  long_poll(call_ptr c, std::string token, clock_type::time_point deadline,
            std::set<std::string> active, std::set<std::string> stopping, bool accepting,
            bool reported)
    : c_(std::move(c)), token_(std::move(token)), deadline_(deadline),
      active_(std::move(active)), stopping_(std::move(stopping)), accepting_(accepting),
      reported_(reported) {}

  void start() override {
    std::weak_ptr<long_poll> weak = shared_from_this();
    auto& hub = c_->gw.hub;
    auto e = hub.on_events({"RunAssigned", "RunCancelRequested"},
                           [weak, worker = c_->param("name")](const heard_event& e) {
                             // A run assigned to another worker is no news here.
                             if (e.path.ends_with(".RunAssigned") && !assigns_to(e.commit, worker))
                               return;
                             if (auto s = weak.lock())
                               s->attempt(e.seq);
                           });
    auto t = hub.on_tick([weak] {
      if (auto s = weak.lock(); s && clock_type::now() >= s->deadline_)
        s->finish(json{{"runs", json::array()}});
    });
    {
      std::lock_guard lock{mu_};
      ids_ = {e, t};
    }
    // A run assigned before the listener was in: the check-in is answered
    // by a core holding what this gateway has heard.
    attempt(hub.last_seq());
  }
  void drain() override { finish(json{{"runs", json::array()}, {"draining", true}}); }
  bool ended() const override {
    std::lock_guard lock{mu_};
    return done_;
  }

 private:
  // `seq`: the commit that woke it, which the answering core must hold
  // (one event is published once, so a core that had not copied it would
  // leave the run waiting for the next event).
  void attempt(std::uint64_t seq = 0) {
    bool first_attempt = false;
    caller who = c_->as_caller();
    {
      std::lock_guard lock{mu_};
      if (done_)
        return;
      min_seq_ = std::max(min_seq_, seq);
      if (asking_) {
        again_ = true;
        return;
      }
      who.min_seq = min_seq_;
      asking_ = true;
      again_ = false;
      first_attempt = !attempted_;
      attempted_ = true;
    }
    std::weak_ptr<long_poll> weak = shared_from_this();
    json body{{"name", c_->param("name")}, {"token", token_}, {"accepting", accepting_},
              {"known_runs", active_}, {"known_stopping", stopping_}};
    // The core holds the check-in until it has news for the worker (it
    // applies the commit that assigns a run before this gateway hears of
    // it): one check-in per assignment, and no trip back to ask. Well
    // inside the time a core's answer is waited for, and the poll's own.
    auto hold = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(
                           deadline_ - clock_type::now() - std::chrono::milliseconds{500}),
                         c_->gw.opts.core_timeout / 3);
    if (hold >= std::chrono::milliseconds{100})
      body["hold_ms"] = hold.count();
    // The active list is true when the worker sent it; a later attempt can
    // reach the core after the worker started what this poll handed it,
    // and must not call those runs lost.
    if (reported_ && first_attempt)
      body["active"] = active_;
    c_->gw.core.command("worker_checkin", body,
                        who, [weak](result<core_answer> r) {
                          if (auto s = weak.lock())
                            s->answered(std::move(r));
                        });
  }

  void answered(result<core_answer> r) {
    bool again = false;
    {
      std::lock_guard lock{mu_};
      asking_ = false;
      again = again_;
    }
    if (!r)
      return finish(r.error());
    if (has_news(r->result()) || clock_type::now() >= deadline_)
      return finish(r->result());
    // `waited`: the core held it as long as asked (a core that does not
    // hold answers at once, and the events bring the next attempt).
    if (again || r->result().value("waited", false))
      attempt();
  }

  bool has_news(const json& answer) const {
    auto unknown = [](const json& list, const std::set<std::string>& known, const char* key) {
      for (auto& x : list) {
        auto id = key ? x.value(key, std::string{}) : x.get<std::string>();
        if (!known.count(id))
          return true;
      }
      return false;
    };
    return unknown(answer.value("runs", json::array()), active_, "run_id")
           || unknown(answer.value("cancel", json::array()), stopping_, nullptr);
  }

  void finish(std::variant<json, error> out) {
    std::vector<std::uint64_t> ids;
    {
      std::lock_guard lock{mu_};
      if (done_)
        return;
      done_ = true;
      ids.swap(ids_);
    }
    for (auto id : ids)
      c_->gw.hub.remove(id);
    if (auto e = std::get_if<error>(&out))
      c_->fail(*e);
    else
      c_->ok(std::get<json>(out));
  }

  call_ptr c_;
  std::string token_;
  clock_type::time_point deadline_;
  std::set<std::string> active_, stopping_;
  bool accepting_;
  bool reported_;  // the worker sent its `active` list
  bool attempted_ = false;
  mutable std::mutex mu_;
  bool done_ = false, asking_ = false, again_ = false;
  std::uint64_t min_seq_ = 0;
  std::vector<std::uint64_t> ids_;
};

std::string bearer(const http_request& req) {
  auto h = req.header("authorization");
  if (h.size() > 7 && (h.starts_with("Bearer ") || h.starts_with("bearer ")))
    return std::string{h.substr(7)};
  return {};
}

void checkin(const call_ptr& c) {
  if (c->who.id != c->param("name"))
    return c->fail(403, "forbidden", "this key belongs to worker '" + c->who.id + "'");
  auto wait = std::chrono::seconds{0};
  if (auto it = c->query.find("wait"); it != c->query.end()) {
    auto n = to_u64(it->second);
    if (!n)
      return c->fail(400, "bad_request", "'wait' is a number of seconds");
    wait = std::min(std::chrono::seconds{*n}, c->gw.opts.max_long_poll);
  }
  std::set<std::string> active, stopping;
  bool accepting = true, reported = false;
  if (!c->req.body.empty()) {
    auto body = parse_json(c);
    if (!body)
      return;
    accepting = body->value("accepting", true);
    reported = body->contains("active");
    for (auto& [key, into] : {std::pair{"active", &active}, std::pair{"stopping", &stopping}}) {
      auto list = body->value(key, json::array());
      if (!list.is_array())
        return c->fail(400, "bad_request", std::string{"'"} + key + "' is a list of run ids");
      for (auto& id : list)
        if (id.is_string())
          into->insert(id.get<std::string>());
    }
  }
  auto poll = std::make_shared<long_poll>(c, bearer(c->req), clock_type::now() + wait,
                                          std::move(active), std::move(stopping), accepting,
                                          reported);
  if (c->gw.add_stream(c, poll))
    poll->start();
}

// ---- what workers send about their runs ----

json worker_run(const call_ptr& c) {
  auto r = run_body(c);
  if (!r)
    return {};
  (*r)["worker"] = c->who.id;
  return *r;
}

void post_console(const call_ptr& c) {
  auto r = worker_run(c);
  if (r.is_null())
    return;
  auto it = c->query.find("offset");
  auto offset = it == c->query.end() ? std::nullopt : to_u64(it->second);
  if (!offset)
    return c->fail(400, "bad_request", "POST console needs ?offset=N, the chunk's first byte");
  r["offset"] = *offset;
  c->gw.core.command("append_console", r, c->as_caller(), render(c), c->req.body);
}

void post_status(const call_ptr& c) {
  auto r = worker_run(c);
  auto body = r.is_null() ? std::nullopt : parse_json(c);
  if (!body)
    return;
  // A final status may carry the console's last bytes (docs/api.md).
  std::string tail;
  if (auto it = body->find("console"); it != body->end()) {
    auto& con = *it;
    if (!con.is_object() || !con.contains("offset") || !con["offset"].is_number_unsigned()
        || !con.contains("data") || !con["data"].is_string())
      return c->fail(400, "bad_request",
                     R"('console' must be {"offset": N, "data": "<base64 bytes>"})");
    auto bytes = base64_decode(con["data"].get_ref<const std::string&>());
    if (!bytes)
      return c->fail(400, "bad_request", "'console.data' is not base64");
    if (bytes->size() > c->gw.opts.max_console_chunk)
      return c->fail(413, "too_large", "'console.data' holds more than a console chunk may");
    (*body)["console_offset"] = con["offset"];
    body->erase(it);
    tail = std::move(*bytes);
  }
  body->update(r);
  c->gw.core.command("report_run", *body, c->as_caller(), render(c, 200, [r](const core_answer& a) {
                       auto out = r;
                       out.erase("worker");
                       out["duplicate"] = a.result().value("duplicate", false) || a.seq == 0;
                       return out;
                     }), tail);
}

void post_tests(const call_ptr& c) {
  auto r = worker_run(c);
  auto body = r.is_null() ? std::nullopt : parse_json(c);
  if (!body)
    return;
  body->update(r);
  c->gw.core.command("report_tests", *body, c->as_caller(), render(c));
}


// A stored artifact recorded by the core; if it refuses, the stored bytes go.
void record_artifact(const call_ptr& c, const json& r, const artifact_key& key, std::uint64_t size,
                     const std::string& sha) {
  c->gw.core.command("store_artifact", r, c->as_caller(),
                     [c, key, size, sha](result<core_answer> a) {
                       if (!a) {
                         if (auto removed = c->gw.artifacts->remove(key); !removed)
                           spdlog::warn("gateway artifact=orphan path=\"{}\" error=\"{}\"",
                                        key.path, removed.error().message);
                         return c->fail(a.error());
                       }
                       c->ok({{"path", key.path}, {"size", size}, {"sha256", sha}}, 201);
                     });
}

// An upload the store took as it arrived: finished, then recorded.
void put_streamed_artifact(const call_ptr& c, const std::shared_ptr<artifact_upload>& upload) {
  auto r = worker_run(c);
  auto path = artifact_path(c->param("path"));
  if (r.is_null())
    return upload->abandon();
  if (!path) {
    upload->abandon();
    return c->fail(path.error());
  }
  auto size = c->req.body_size;
  auto sha = upload->sha256();
  r["path"] = *path;
  r["size"] = size;
  r["sha256"] = sha;
  auto key = artifact_of(r, *path);
  upload->finish([c, r, key, size, sha](status_result stored) {
    if (!stored)
      return c->fail(502, "storage_unavailable",
                     "artifact '" + key.path + "' could not be stored: " + stored.error().message);
    record_artifact(c, r, key, size, sha);
  });
}

void put_artifact(const call_ptr& c) {
  if (auto upload = std::dynamic_pointer_cast<artifact_upload>(c->req.sink))
    return put_streamed_artifact(c, upload);
  auto incoming = c->req.body_file;
  auto discard = [incoming] {
    std::error_code ec;
    if (!incoming.empty())
      std::filesystem::remove(incoming, ec);
  };
  auto r = worker_run(c);
  auto path = artifact_path(c->param("path"));
  if (r.is_null())
    return discard();
  if (!path) {
    discard();
    return c->fail(path.error());
  }
  if (!c->gw.artifacts) {
    discard();
    return c->fail(503, "unavailable", "this node keeps no artifacts");
  }
  if (incoming.empty()) {
    // An empty file: the server had no body to write.
    incoming = c->gw.artifacts->receive_path();
    std::ofstream{incoming};
  }
  std::uint64_t size = 0;
  auto sha = sha256_file_hex(incoming, &size);
  r["path"] = *path;
  r["size"] = size;
  r["sha256"] = sha;
  auto key = artifact_of(r, *path);
  // Stored first, then recorded: an event names only what the store has
  // confirmed; a refused record removes it again.
  c->gw.artifacts->put(key, incoming, sha, [c, r, key, size, sha](status_result stored) {
    if (!stored)
      return c->fail(502, "storage_unavailable",
                     "artifact '" + key.path + "' could not be stored: " + stored.error().message);
    record_artifact(c, r, key, size, sha);
  });
}

// ---- tokens ----

void create_token(const call_ptr& c) {
  auto body = parse_json(c);
  if (!body)
    return;
  json req{{"scope", body->value("scope", std::string{})},
           {"label", body->value("label", std::string{})},
           {"project", body->value("project", std::string{})}};
  c->gw.core.command("issue_token", req, c->as_caller(), render(c, 201, [req](const core_answer& a) {
                       auto out = req;
                       out["id"] = a.result().value("id", json{});
                       out["token"] = a.result().value("token", json{});
                       return out;
                     }));
}

void list_tokens(const call_ptr& c) {
  c->gw.core.query("list_tokens", json::object(), c->as_caller(), render(c));
}

void revoke_token(const call_ptr& c) {
  auto id = c->param("id");
  c->gw.core.command("revoke_token", {{"id", id}}, c->as_caller(),
                     render(c, 200, [id](const core_answer&) {
                       return json{{"id", id}, {"revoked", true}};
                     }));
}

// Signed by the sender, not authorised by a token: the core checks the
// signature with the project's key (domain/webhooks.hpp).
void hooks(const call_ptr& c) {
  if (!json_body(*c))
    return c->fail(415, "unsupported_media_type", "webhooks must send application/json");
  json headers = json::object();
  for (auto& [name, value] : c->req.headers)
    if (name.starts_with("x-") && !headers.contains(name))
      headers[name] = value;
  json body{{"kind", c->param("kind")}, {"project", c->param("project")}, {"headers", headers}};
  if (auto it = c->query.find("trigger"); it != c->query.end())
    body["trigger"] = it->second;
  c->gw.core.command("receive_webhook", body, c->as_caller(), render(c, 202), c->req.body);
}

std::vector<route> route_table() {
  using a = access;
  std::vector<std::tuple<const char*, const char*, access, void (*)(const call_ptr&)>> rows{
    {"GET", "/healthz", a::open, healthz},
    {"GET", "/readyz", a::open, readyz},
    {"GET", "/metrics", a::open, metrics},
    {"GET", "/", a::open, ui_index},
    {"GET", "/ui/{path*}", a::open, ui_file},
    {"GET", "/v1/whoami", a::read, whoami},
    {"GET", "/v1/projects/{project}/badge.svg", a::read, badge},
    {"GET", "/v1/projects", a::read, list_projects},
    {"PUT", "/v1/projects/{project}", a::admin, put_project},
    {"GET", "/v1/projects/{project}", a::read, get_project},
    {"DELETE", "/v1/projects/{project}", a::admin, delete_project},
    {"PUT", "/v1/projects/{project}/secrets/{key}", a::admin, put_secret},
    {"DELETE", "/v1/projects/{project}/secrets/{key}", a::admin, delete_secret},
    {"POST", "/v1/projects/{project}/builds", a::trigger, trigger_build},
    {"GET", "/v1/projects/{project}/builds", a::read, list_builds},
    {"GET", "/v1/projects/{project}/builds/{build}", a::read, get_build},
    {"POST", "/v1/projects/{project}/builds/{build}/cancel", a::trigger, cancel_build},
    {"POST", "/v1/projects/{project}/builds/{build}/rerun", a::trigger, rerun_build},
    {"POST", "/v1/projects/{project}/builds/{build}/pin", a::trigger, pin_build},
    {"DELETE", "/v1/projects/{project}/builds/{build}/pin", a::trigger, unpin_build},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}", a::read, get_run},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}/console", a::read, get_console},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}/rundef", a::read, get_rundef},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}/artifacts", a::read, list_artifacts},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}/artifacts/{path*}", a::read,
     get_artifact},
    {"GET", "/v1/projects/{project}/builds/{build}/runs/{run}/tests", a::read, list_tests},
    {"POST", "/v1/projects/{project}/builds/{build}/runs/{run}/cancel", a::trigger, cancel_run},
    {"GET", "/v1/events", a::read, get_events},
    {"GET", "/v1/queue", a::read, get_queue},
    {"POST", "/v1/workers", a::open, register_worker},
    {"GET", "/v1/workers", a::read, list_workers},
    {"POST", "/v1/workers/{name}/enlist", a::admin, enlist_worker},
    {"POST", "/v1/workers/{name}/delist", a::admin, delist_worker},
    {"DELETE", "/v1/workers/{name}", a::admin, delete_worker},
    {"POST", "/v1/workers/{name}/checkin", a::worker, checkin},
    {"POST", "/v1/runs/{project}/{build}/{run}/console", a::worker, post_console},
    {"POST", "/v1/runs/{project}/{build}/{run}/status", a::worker, post_status},
    {"PUT", "/v1/runs/{project}/{build}/{run}/artifacts/{path*}", a::worker, put_artifact},
    {"POST", "/v1/runs/{project}/{build}/{run}/tests", a::worker, post_tests},
    {"POST", "/v1/tokens", a::admin, create_token},
    {"GET", "/v1/tokens", a::admin, list_tokens},
    {"DELETE", "/v1/tokens/{id}", a::admin, revoke_token},
    {"POST", "/v1/hooks/{kind}/{project}", a::open, hooks},
  };
  std::vector<route> out;
  for (auto& [method, pattern, need, fn] : rows)
    out.push_back({method, split(pattern), need, fn, pattern});
  return out;
}

} // namespace

void gateway::impl::handle(http_request req, responder respond) {
  auto target = parse_target(req.target);
  if (!target) {
    auto e = target.error();
    return responder{std::make_shared<metered_sink>(respond, metrics, "(bad path)")}(
      json_error(400, e.code, e.message));
  }
  const route* found = nullptr;
  bool path_known = false;
  std::map<std::string, std::string> params;
  for (auto& r : routes)
    if (auto m = match(r, target->segments)) {
      path_known = true;
      if (r.method == req.method) {
        found = &r;
        params = std::move(*m);
        break;
      }
    }
  if (!found) {
    auto m = responder{std::make_shared<metered_sink>(respond, metrics, "(unrouted)")};
    if (path_known)
      return m(json_error(405, "method_not_allowed", req.method + " is not allowed here"));
    return m(json_error(404, "not_found", "no route for " + req.target.substr(0, req.target.find('?'))));
  }
  auto c = std::make_shared<call>(call{*this, *found, std::move(req), std::move(params),
                                       std::move(target->query), {},
                                       responder{std::make_shared<metered_sink>(
                                         std::move(respond), metrics, found->name)}});
  authorise(c);
}

void gateway::impl::authorise(const call_ptr& c) {
  if (c->r.need == access::open)
    return c->r.fn(c);
  auto token = bearer(c->req);
  if (token.empty()) {
    if (c->r.need == access::read && opts.public_read)
      return c->r.fn(c);
    return c->fail(401, "unauthorized", "send Authorization: Bearer <token>");
  }
  {
    std::lock_guard lock{auth_mu};
    if (auto it = auth_cache.find(token); it != auth_cache.end()) {
      if (clock_type::now() < it->second.until) {
        auto who = it->second.who;
        return admit(c, who);
      }
      auth_cache.erase(it);
    }
  }
  core.query("authenticate", {{"token", token}}, {}, [this, c, token](result<core_answer> r) {
    if (!r)
      return c->fail(r.error());
    identity who{false, r->result().value("kind", "") == "worker", r->result().value("id", ""),
                 r->result().value("scope", ""), r->result().value("project", "")};
    {
      std::lock_guard lock{auth_mu};
      if (auth_cache.size() > 10000)
        auth_cache.clear();
      auth_cache[token] = {who, clock_type::now() + opts.auth_cache};
    }
    admit(c, who);
  });
}

void gateway::impl::admit(const call_ptr& c, const identity& who) {
  c->who = who;
  auto need = c->r.need;
  if (need == access::worker) {
    if (!who.worker)
      return c->fail(403, "forbidden", "this route is for workers, with their own key");
    return c->r.fn(c);
  }
  if (who.worker)
    return c->fail(403, "forbidden", "a worker's key serves only its own check-in and runs");
  if (rank(who.scope) < rank(need))
    return c->fail(403, "forbidden", "this needs a token of scope '"
                                       + std::string{need == access::admin ? "admin"
                                                     : need == access::trigger ? "trigger"
                                                                               : "read"}
                                       + "'; this one is '" + who.scope + "'");
  if (!who.project.empty()) {
    auto it = c->params.find("project");
    if (it != c->params.end() ? it->second != who.project : need != access::read)
      return c->fail(403, "forbidden", "this token serves project '" + who.project + "' only");
  }
  c->r.fn(c);
}

gateway::gateway(bus::bus& b, gateway_options opts)
    : impl_(std::make_unique<impl>(b, std::move(opts))) {
  impl_->routes = route_table();
  if (impl_->opts.store)
    impl_->artifacts = impl_->opts.store;
  else if (!impl_->opts.artifacts.empty())
    impl_->artifacts = make_local_artifact_store(impl_->opts.artifacts);
}

gateway::~gateway() = default;

void gateway::handle(http_request req, responder respond) {
  impl_->handle(std::move(req), std::move(respond));
}

body_plan gateway::plan(std::string_view method, std::string_view target) {
  auto& o = impl_->opts;
  auto path = target.substr(0, target.find('?'));
  body_plan p;
  p.limit = o.max_json_bytes;
  if (method == "PUT" && path.starts_with("/v1/runs/") && path.find("/artifacts/") != std::string_view::npos
      && impl_->artifacts) {
    p.limit = o.max_artifact_bytes;
    // Stores that take bytes as they arrive get them so; the others a spool file.
    if (auto t = parse_target(target); t && t->segments.size() >= 7 && t->segments[5] == "artifacts")
      if (auto build = to_u64(t->segments[3])) {
        std::string rel;
        for (std::size_t i = 6; i < t->segments.size(); ++i)
          rel += (rel.empty() ? "" : "/") + t->segments[i];
        if (auto checked = artifact_path(rel))
          p.sink = impl_->artifacts->open_upload(
            {t->segments[2], static_cast<std::uint32_t>(*build), t->segments[4], *checked});
      }
    if (!p.sink)
      p.file = impl_->artifacts->receive_path();
  } else if (method == "PUT" && path.starts_with("/v1/projects/")) {
    p.limit = path.find("/secrets/") != std::string_view::npos ? o.max_secret_bytes
                                                               : o.max_definition_bytes;
  } else if (method == "POST" && path.starts_with("/v1/runs/") && path.ends_with("/console")) {
    p.limit = o.max_console_chunk;
  }
  return p;
}

void gateway::drain() {
  if (impl_->draining.exchange(true))
    return;
  std::vector<std::shared_ptr<live_stream>> open;
  {
    std::lock_guard lock{impl_->live_mu};
    open = impl_->live;
  }
  spdlog::info("gateway draining=true open_streams={}", open.size());
  for (auto& s : open)
    s->drain();
}

bool gateway::draining() const { return impl_->draining; }

std::size_t gateway::open_streams() const { return impl_->open_streams(); }

} // namespace kiln::gateway
