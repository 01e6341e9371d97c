// The projector: the read model kept live from the log's subscription, the
// process managers and the scheduler acting on it, and the use cases
// (requests and queries) that need it. One actor, so the model needs no lock.
#include "actors/core_messages.hpp"

#include "actors/build_plan.hpp"
#include "actors/process_manager.hpp"
#include "actors/webhooks.hpp"
#include "actors/scheduler.hpp"
#include "events/streams.hpp"
#include "storage/console_store.hpp"
#include "storage/event_log.hpp"
#include "storage/secret_box.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

namespace kiln::core::detail {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

namespace {

using build_id = std::pair<std::string, std::uint32_t>;

struct layout_entry {
  std::size_t added = 0;  // chains folded in when it was made
  std::shared_ptr<const domain::project_definition> def;
  std::vector<domain::planned_run> runs;
};

struct waiter {
  std::uint64_t id = 0;
  std::function<void()> ready;
  std::function<void(error)> fail;
};

struct projector_state {
  env_ptr env;
  caf::actor registry;
  std::shared_ptr<domain::read_model> model;

  domain::in_flight_assignments assigning;
  std::string last_project;  // the scheduler's round robin
  std::map<std::string, std::int64_t> last_seen;
  std::set<std::string> paused;  // workers taking no new runs (their last check-in said so)
  // What this core last passed on of each worker's check-ins, and when
  // (core::share_checkins): {ns, accepting}.
  std::map<std::string, std::pair<std::int64_t, bool>> shared;
  // Check-ins held until a commit brings their worker news, by worker
  // (worker_checkin::hold); each answered by `until_ns` at the latest.
  struct held_checkin {
    std::int64_t until_ns;
    worker_checkin c;
    reply_callback cb;
  };
  std::map<std::string, std::vector<held_checkin>> held_checkins;

  // Only the leading core runs the process managers, the watchdog and the
  // scheduler (core_config::leading).
  bool leading = true;
  std::set<build_id> dirty;
  bool process_pending = false;
  bool schedule_needed = false;
  // Steps sent and not yet seen in the model; and those refused for good.
  std::set<std::string> steps_in_flight;
  std::set<std::string> given_up;
  std::set<build_id> retry_on_tick;

  std::map<build_id, layout_entry> layouts;
  std::map<std::pair<std::string, std::uint32_t>, std::shared_ptr<const domain::project_definition>>
    old_definitions;

  // Requests to the aggregates not answered yet, and when each times out.
  // A CAF request with a timeout woke CAF's clock thread twice (set and
  // cancel), several times a run; these are checked each second instead.
  std::uint64_t next_call = 1;
  std::map<std::uint64_t, std::pair<std::int64_t, std::function<void(error)>>> calls;

  std::uint64_t commits_since_save = 0;
  std::uint64_t next_waiter = 1;
  std::map<build_id, std::vector<waiter>> build_waiters;
  std::multimap<std::uint64_t, std::function<void()>> seq_waiters;
};

using projector_actor = caf::stateful_actor<projector_state>;

// Codes that mean "already done" when a process manager repeats itself (or
// another core made the step first).
bool benign(const std::string& code) {
  return code == "already_exists" || code == "illegal_transition" || code == "finished"
         || code == "duplicate_run";
}
bool transient(const std::string& code) {
  return code == "io" || code == "conflict" || code == "timeout" || code == "closed"
         || code == "unavailable";
}

commit_metadata meta_for(const request_context& ctx) {
  return {now_ns(), ctx.principal, ctx.command_id, ""};
}
commit_metadata system_meta(std::string correlation = {}) {
  return {now_ns(), "system", "", std::move(correlation)};
}


// Runs `f` once the model holds commit `seq`.
void when_seen(projector_actor* self, global_seq seq, std::function<void()> f) {
  if (self->state.model->seq() >= seq)
    f();
  else
    self->state.seq_waiters.emplace(seq.value, std::move(f));
}

// A call to an aggregate: `fail` if it has not answered by the request
// timeout (expire_calls); the id, for the answer to claim it first.
std::uint64_t open_call(projector_actor* self, std::function<void(error)> fail) {
  auto& s = self->state;
  auto id = s.next_call++;
  auto deadline = now_ns() + std::chrono::nanoseconds{s.env->config.request_timeout}.count();
  s.calls.emplace(id, std::pair{deadline, std::move(fail)});
  return id;
}
// Whether the answer is the first word on call `id` (not timed out before).
bool close_call(projector_actor* self, std::uint64_t id) { return self->state.calls.erase(id) > 0; }

void expire_calls(projector_actor* self) {
  auto now = now_ns();
  std::vector<std::function<void(error)>> late;
  for (auto it = self->state.calls.begin(); it != self->state.calls.end();)
    if (it->second.first <= now) {
      late.push_back(std::move(it->second.second));
      it = self->state.calls.erase(it);
    } else {
      ++it;
    }
  for (auto& fail : late)
    fail(error{"timeout", "the aggregate did not answer in time"});
}

// Asks the aggregate (through the registry); `k` gets its answer, or an
// error if it failed or did not come in time.
template <class Result, class Atom, class Payload>
void ask_aggregate(projector_actor* self, Atom atom, Payload payload,
                   std::function<void(Result&)> k) {
  auto id = open_call(self, [k](error e) {
    Result r{std::move(e)};
    k(r);
  });
  self->request(self->state.registry, caf::infinite, atom, std::move(payload))
    .then(
      [=](Result& r) {
        if (close_call(self, id))
          k(r);
      },
      [=](caf::error& e) {
        if (!close_call(self, id))
          return;
        Result r{error{"timeout", "the aggregate did not answer: " + caf::to_string(e)}};
        k(r);
      });
}

void exec(projector_actor* self, stream_id stream, aggregate_command command, commit_metadata meta,
          std::function<void(command_result&)> k) {
  ask_aggregate<command_result>(self, exec_atom::value,
                                domain_command{std::move(stream), std::move(command), std::move(meta)},
                                std::move(k));
}

void peek(projector_actor* self, stream_id stream, std::function<void(state_result&)> k) {
  ask_aggregate<state_result>(self, peek_atom::value, std::move(stream), std::move(k));
}

void wake(projector_actor* self) {
  auto& s = self->state;
  if (!s.process_pending) {
    s.process_pending = true;
    self->send(self, process_atom::value);
  }
}

// The definition a build was made from: the current one, or an older
// version read back from the project's stream.
std::shared_ptr<const domain::project_definition>
definition_at(projector_actor* self, const std::string& project, std::uint32_t version) {
  auto& s = self->state;
  auto p = s.model->project(project);
  if (p && p->definition_version == version && p->definition)
    return p->definition;
  auto key = std::pair{project, version};
  if (auto it = s.old_definitions.find(key); it != s.old_definitions.end())
    return it->second;
  auto commits = s.env->log.read_stream(streams::project(project), stream_version{1}, 1u << 20);
  if (!commits)
    return nullptr;
  for (auto& c : *commits)
    for (auto& e : c.body.events)
      if (auto d = std::get_if<project_definition_updated>(&e); d && d->definition_version == version)
        if (auto parsed = domain::parse_project_definition(d->yaml)) {
          auto def = std::make_shared<const domain::project_definition>(std::move(*parsed));
          s.old_definitions[key] = def;
          return def;
        }
  return nullptr;
}

const layout_entry* layout_for(projector_actor* self, const domain::build_summary& b) {
  auto& s = self->state;
  auto id = build_id{b.project, b.number};
  auto it = s.layouts.find(id);
  if (it != s.layouts.end() && it->second.added == b.added.size())
    return &it->second;
  auto def = definition_at(self, b.project, b.facts.definition_version);
  if (!def)
    return nullptr;
  auto runs = domain::plan_existing(*def, b.facts, b.added);
  if (!runs) {
    spdlog::error("core plan=failed project={} build={} error=\"{}\"", b.project, b.number,
                  runs.error().message);
    return nullptr;
  }
  auto& e = s.layouts[id];
  e = {b.added.size(), def, std::move(*runs)};
  return &e;
}

void run_step(projector_actor* self, const domain::saga_step& step);
void schedule(projector_actor* self, const std::vector<domain::queue_run_step>& steps = {});
void answer_checkin(projector_actor* self, const worker_checkin& c, reply_callback cb,
                    std::int64_t hold_until_ns);
void wake_checkins(projector_actor* self, const std::string& worker);
void release_checkins(projector_actor* self, bool all);

// A project's secrets, opened (key -> clear value).
std::map<std::string, std::string> opened_secrets(projector_actor* self,
                                                  const domain::project::state& ps) {
  std::map<std::string, std::string> out;
  for (auto& [key, sealed] : ps.secrets)
    if (auto clear = self->state.env->secrets.open(sealed))
      out[key] = *clear;
  return out;
}

// Settles a step: it stays in flight until the model shows its effect.
std::function<void(command_result&)> step_done(projector_actor* self, std::string name,
                                               std::optional<build_id> build) {
  return [=](command_result& r) {
    auto& s = self->state;
    if (r) {
      when_seen(self, r->seq, [=] { self->state.steps_in_flight.erase(name); });
      return;
    }
    s.steps_in_flight.erase(name);
    auto& code = r.error().code;
    if (benign(code))
      return;
    if (transient(code)) {
      spdlog::warn("core step=retry what=\"{}\" error={} message=\"{}\"", name, code,
                   r.error().message);
      if (build)
        s.retry_on_tick.insert(*build);
      return;
    }
    spdlog::error("core step=refused what=\"{}\" error={} message=\"{}\"", name, code,
                  r.error().message);
    s.given_up.insert(name);
  };
}

void create_build(projector_actor* self, const domain::create_build_step& x, std::string name) {
  auto& a = x.allocation;
  auto def = definition_at(self, x.project, a.definition_version);
  std::vector<std::string> runs;
  std::string problem;
  if (!def) {
    problem = "definition version " + std::to_string(a.definition_version) + " is not readable";
  } else if (auto plan = domain::plan_build(*def, x.project, a); !plan) {
    problem = plan.error().message;
  } else {
    for (auto& r : *plan)
      runs.push_back(r.name);
    // The new build's layout, so that queueing its runs needs no new plan.
    self->state.layouts[{x.project, a.number}] = {0, def, std::move(*plan)};
  }
  if (!problem.empty())
    spdlog::error("core build=unplannable project={} build={} error=\"{}\"", x.project, a.number,
                  problem);
  // A build that cannot be planned is still created (its number is taken)
  // with no runs; the process manager then completes it FAILED.
  build_created facts{x.project, a.number,   a.trigger, a.params,   a.ref,      a.sha,
                      a.reason,  a.definition_version, std::move(runs), a.priority, a.rerun_of};
  exec(self, streams::build(x.project, a.number), domain::build::create_build{std::move(facts)},
       system_meta(), step_done(self, name, build_id{x.project, a.number}));
}

void run_step(projector_actor* self, const domain::saga_step& step) {
  auto& s = self->state;
  auto name = domain::describe(step);
  if (s.steps_in_flight.count(name) || s.given_up.count(name))
    return;
  s.steps_in_flight.insert(name);
  auto max_attempts = s.env->config.max_attempts;
  std::visit(
    [&](auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, domain::create_build_step>) {
        create_build(self, x, name);
      } else if constexpr (std::is_same_v<T, domain::queue_run_step>) {
        s.steps_in_flight.erase(name);  // schedule() keeps its own
        schedule(self, {x});
      } else if constexpr (std::is_same_v<T, domain::cancel_run_step>) {
        exec(self, streams::run(x.run.project, x.run.build, x.run.name),
             domain::run::cancel_run{"the build was cancelled"}, system_meta(),
             step_done(self, name, build_id{x.run.project, x.run.build}));
      } else if constexpr (std::is_same_v<T, domain::add_runs_step>) {
        exec(self, streams::build(x.project, x.build),
             domain::build::add_runs{x.trigger, x.parent_run, x.runs}, system_meta(),
             step_done(self, name, build_id{x.project, x.build}));
      } else if constexpr (std::is_same_v<T, domain::complete_build_step>) {
        domain::build::complete_build complete{x.result, {}};
        auto p = s.model->project(x.project);
        auto b = s.model->build(x.project, x.build);
        if (auto layout = b ? layout_for(self, *b) : nullptr; p && layout)
          complete.notifications =
            domain::plan_notifications(*layout->def, b->facts.trigger, x.result,
                                       domain::previous_result(*p, b->facts.trigger, x.build));
        exec(self, streams::build(x.project, x.build), std::move(complete), system_meta(),
             step_done(self, name, build_id{x.project, x.build}));
      } else if constexpr (std::is_same_v<T, domain::mark_offline_step>) {
        spdlog::info("core worker=offline name={} reason=no_checkin", x.worker);
        exec(self, streams::worker(x.worker), domain::worker::mark_offline{"no check-in"},
             system_meta(), step_done(self, name, std::nullopt));
      } else if constexpr (std::is_same_v<T, domain::lose_run_step>) {
        exec(self, streams::run(x.run.project, x.run.build, x.run.name),
             domain::run::lose_run{"worker " + x.worker + " went offline", max_attempts, x.worker},
             system_meta(), step_done(self, name, build_id{x.run.project, x.run.build}));
      } else if constexpr (std::is_same_v<T, domain::cron_slot_step>) {
        if (x.fire)
          spdlog::info("core cron=fire project={} trigger={} slot={}", x.project, x.trigger,
                       x.slot_unix_s);
        exec(self, streams::project(x.project),
             domain::project::record_cron_slot{x.trigger, x.slot_unix_s, x.fire}, system_meta(),
             step_done(self, name, std::nullopt));
      } else if constexpr (std::is_same_v<T, domain::time_out_step>) {
        exec(self, streams::run(x.run.project, x.run.build, x.run.name),
             domain::run::time_out_run{"ran longer than " + std::to_string(x.timeout_s) + " s"},
             system_meta(), step_done(self, name, build_id{x.run.project, x.run.build}));
      }
    },
    step);
}

// An assignment stays in flight until the model shows it (or it failed).
std::function<void(command_result&)> assignment_done(projector_actor* self, domain::assignment a) {
  self->state.assigning.add(a);
  return [=](command_result& r) {
    if (r && !r->events.empty())
      when_seen(self, r->seq, [=] { self->state.assigning.remove(a.run, a.worker); });
    else
      self->state.assigning.remove(a.run, a.worker);
  };
}

// Queued runs to free workers, and the runs its builds queue now (`steps`)
// with them: one the scheduler gives a worker at once is queued and
// assigned in one commit, a round trip to the log (in a cluster, a
// replicated commit) fewer on the way to its worker.
void schedule(projector_actor* self, const std::vector<domain::queue_run_step>& steps) {
  auto& s = self->state;
  struct queueing {
    std::string step;
    domain::run::queue_run command;
    std::function<void(command_result&)> assignment;  // when it gets a worker
  };
  std::map<domain::run_key, queueing> queue;
  std::vector<domain::incoming_run> incoming;
  for (auto& x : steps) {
    auto name = domain::describe(domain::saga_step{x});
    if (s.steps_in_flight.count(name) || s.given_up.count(name))
      continue;
    auto b = s.model->build(x.run.project, x.run.build);
    auto layout = b ? layout_for(self, *b) : nullptr;
    const domain::planned_run* planned = nullptr;
    if (layout)
      for (auto& r : layout->runs)
        if (r.name == x.run.name)
          planned = &r;
    if (!planned) {
      s.given_up.insert(name);
      spdlog::error("core step=unplannable what=\"{}\"", name);
      continue;
    }
    s.steps_in_flight.insert(name);
    queue[x.run] = {name, domain::run::queue_run{x.run.project, x.run.build, x.run.name,
                                                 planned->host_tag, planned->rundef,
                                                 planned->timeout_s, {}},
                    nullptr};
    incoming.push_back({x.run, planned->host_tag, b->facts.priority});
  }
  for (auto& a : domain::schedule(*s.model, s.assigning, s.last_project, s.paused, incoming)) {
    if (auto q = queue.find(a.run); q != queue.end()) {
      q->second.command.worker = a.worker;
      q->second.assignment = assignment_done(self, a);
    } else {
      exec(self, a.run.id(), domain::run::assign_run{a.worker}, system_meta(),
           assignment_done(self, a));
    }
  }
  for (auto& [run, q] : queue) {
    auto step = step_done(self, q.step, build_id{run.project, run.build});
    exec(self, run.id(), std::move(q.command), system_meta(),
         [step, assignment = std::move(q.assignment)](command_result& r) {
           if (assignment)
             assignment(r);
           step(r);
         });
  }
}

void process(projector_actor* self) {
  auto& s = self->state;
  s.process_pending = false;
  auto dirty = std::move(s.dirty);
  s.dirty.clear();
  if (!s.leading) {  // the leader does it; a core that starts leading looks at every open build
    s.schedule_needed = false;
    return;
  }
  std::vector<domain::queue_run_step> queueing;
  for (auto& id : dirty) {
    auto p = s.model->project(id.first);
    if (!p)
      continue;
    auto b = s.model->build(id.first, id.second);
    const layout_entry* layout = b ? layout_for(self, *b) : nullptr;
    for (auto& step : domain::next_build_steps(*p, id.second, layout ? layout->def.get() : nullptr,
                                               layout ? &layout->runs : nullptr)) {
      if (auto q = std::get_if<domain::queue_run_step>(&step))
        queueing.push_back(*q);
      else
        run_step(self, step);
    }
    if (b && b->completed)
      s.layouts.erase(id);
  }
  if (s.schedule_needed || !queueing.empty()) {
    s.schedule_needed = false;
    schedule(self, queueing);
  }
}

void save_model(projector_actor* self) {
  auto& s = self->state;
  s.commits_since_save = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto saved = s.env->log.save_snapshot(read_model_snapshot,
                                        {stream_version{s.model->seq().value}, s.model->encode()});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (saved)
    spdlog::info("core projections=saved seq={} ms={}", s.model->seq().value, ms.count());
  else
    spdlog::warn("core projections=not_saved error=\"{}\"", saved.error().message);
}

void on_commit(projector_actor* self, const logged_commit& c) {
  auto& s = self->state;
  if (c.seq <= s.model->seq())
    return;
  s.model->apply(c);
  if (++s.commits_since_save >= s.env->config.projection_snapshot_every)
    save_model(self);
  auto kind = streams::kind_of(c.body.stream);
  if (kind == "project") {
    auto project = c.body.stream.value.substr(8);
    for (auto& e : c.body.events)
      if (auto a = std::get_if<build_number_allocated>(&e))
        s.dirty.emplace(project, a->number);
  } else if (kind == "build") {
    if (auto id = domain::parse_build_stream(c.body.stream.value)) {
      s.dirty.insert(*id);
      if (auto w = s.build_waiters.find(*id);
          w != s.build_waiters.end() && s.model->build(id->first, id->second)) {
        auto ready = std::move(w->second);
        s.build_waiters.erase(w);
        for (auto& x : ready)
          x.ready();
      }
    }
  } else if (kind == "run") {
    if (auto k = domain::parse_run_stream(c.body.stream.value)) {
      s.dirty.emplace(k->project, k->build);
      // A held check-in learns of a run given to its worker, or to stop.
      if (!s.held_checkins.empty())
        for (auto& e : c.body.events)
          if (auto a = std::get_if<run_assigned>(&e))
            wake_checkins(self, a->worker);
          else if (std::holds_alternative<run_cancel_requested>(e))
            if (auto r = s.model->run(*k))
              wake_checkins(self, r->worker);
    }
    s.schedule_needed = true;
  } else if (kind == "worker") {
    s.schedule_needed = true;
  }
  while (!s.seq_waiters.empty() && s.seq_waiters.begin()->first <= s.model->seq().value) {
    auto f = std::move(s.seq_waiters.begin()->second);
    s.seq_waiters.erase(s.seq_waiters.begin());
    f();
  }
  (*s.env->applied)(c);
  wake(self);
}

// ---- use cases ----

// Replies once the model holds the commit, so that whoever got the reply
// reads their own write (a check-in right after a registration finds the
// worker).
void reply_when_seen(projector_actor* self, global_seq seq, reply_callback cb, reply r) {
  when_seen(self, seq, [cb = std::move(cb), r = std::move(r)] { cb(r); });
}

void simple(projector_actor* self, stream_id stream, aggregate_command command,
            const request_context& ctx, reply_callback cb) {
  exec(self, std::move(stream), std::move(command), meta_for(ctx), [=](command_result& r) {
    if (!r)
      return cb(r.error());
    reply_when_seen(self, r->seq, cb, receipt{r->seq, r->duplicate});
  });
}

void wait_for_build(projector_actor* self, build_id id, std::function<void()> ready,
                    std::function<void(error)> fail) {
  auto& s = self->state;
  if (s.model->build(id.first, id.second))
    return ready();
  auto wid = s.next_waiter++;
  s.build_waiters[id].push_back({wid, std::move(ready), std::move(fail)});
  s.dirty.insert(id);
  wake(self);
  self->delayed_send(self, s.env->config.request_timeout, expire_atom::value, id.first, id.second,
                     wid);
}

void allocate(projector_actor* self, std::string project, domain::project::allocate_build cmd,
              const request_context& ctx, reply_callback cb) {
  exec(self, streams::project(project), std::move(cmd), meta_for(ctx),
       [=](command_result& r) {
         if (!r)
           return cb(r.error());
         const build_number_allocated* a = nullptr;
         for (auto& e : r->events)
           if (auto x = std::get_if<build_number_allocated>(&e))
             a = x;
         if (!a)
           return cb(error{"internal", "the project allocated no build number"});
         auto number = a->number;
         auto seq = r->seq;
         wait_for_build(
           self, {project, number},
           [=] {
             auto b = self->state.model->build(project, number);
             cb(reply{build_ref{seq, project, number, b->run_names()}});
           },
           cb);
       });
}

// A final status's console size: its last bytes' append's, or the console
// as this core holds it (chunks the worker sent before, through any core).
std::uint64_t final_console_size(projector_actor* self, const report_run& x) {
  auto console = self->state.env->config.console;
  auto held = console ? console->console_size(x.run.path()) : result<std::uint64_t>{0ull};
  return std::max(x.console_size, held ? *held : 0);
}

// The worker holding a run (assigned or running) writes its console. The
// store answers `cb` itself: a cluster's waits on JetStream, and this
// actor does not wait with it.
void write_console(projector_actor* self, const append_console& x, reply_callback cb) {
  auto& s = self->state;
  auto console = s.env->config.console;
  if (!console)
    return cb(error{"unavailable", "this core keeps no console logs"});
  auto r = s.model->run(x.run);
  if (!r)
    return cb(error{"not_found", "no run " + x.run.path()});
  if (r->worker != x.worker)
    return cb(error{"not_assigned_to_you", "run " + x.run.path() + " is not held by worker '"
                                             + x.worker + "'"});
  if (r->finished())
    return cb(error{"finished", "run " + x.run.path() + " has ended; its console is closed"});
  auto data = std::make_shared<const std::string>(x.data);
  console->append_console_async(x.run.path(), x.offset, *data,
                                [data, cb = std::move(cb)](result<storage::console_append> a) {
                                  if (!a)
                                    return cb(a.error());
                                  cb(reply{console_ack{a->size, a->new_from,
                                                       a->added ? data->substr(data->size() - a->added)
                                                                : std::string{}}});
                                });
}

void issue(projector_actor* self, const issue_token& x, const request_context& ctx,
           reply_callback cb) {
  auto& s = self->state;
  auto id = x.id;
  if (id.empty())
    id = ctx.command_id.empty()
           ? domain::random_secret().substr(0, 12)
           : s.env->secrets.derive("token-id/" + ctx.command_id).substr(0, 12);
  // With a command id the secret can be made again for a retried request.
  auto token = !x.token.empty() ? x.token
               : domain::make_api_token(
                   id, ctx.command_id.empty()
                         ? domain::random_secret()
                         : s.env->secrets.derive("token/" + id + "/" + ctx.command_id));
  if (token != domain::make_api_token(id, token.substr(std::min(token.size(), id.size() + 4))))
    return cb(error{"bad_request", "a token for id '" + id + "' looks like kt." + id + ".<secret>"});
  exec(self, streams::token(id),
       domain::token::issue_token{id, x.label, x.scope, x.project, domain::token_hash(token)},
       meta_for(ctx), [=](command_result& r) {
         if (!r)
           return cb(r.error());
         reply_when_seen(self, r->seq, cb, api_token{r->seq, id, token});
       });
}

// A worker's check-in, here or at another core: when, and whether it takes
// new runs. True when it has started taking them again.
bool note_checkin(projector_state& s, const std::string& worker, bool accepting, std::int64_t at) {
  s.last_seen[worker] = at;
  if (!accepting) {
    s.paused.insert(worker);
    return false;
  }
  return s.paused.erase(worker) > 0;
}

// A RUNNING run its worker's check-in does not list died with it (it restarted).
bool lost_by(const worker_checkin& c, const domain::run_summary& r, const domain::run_key& k) {
  return c.active && r.status == kiln::status::running && !c.active->count(k.path());
}

void checkin(projector_actor* self, const worker_checkin& c, reply_callback cb) {
  auto& s = self->state;
  auto w = s.model->worker(c.name);
  if (!w || w->deleted || w->token_sha256.empty())
    return cb(error{"not_found", "no worker '" + c.name + "'"});
  auto who = domain::authenticate(*s.model, c.token);
  if (!who)
    return cb(who.error());
  if (who->holder != domain::grant::kind::worker || who->id != c.name)
    return cb(error{"forbidden", "this token is not worker '" + c.name + "'s"});
  auto now = now_ns();
  note_checkin(s, c.name, c.accepting, now);
  if (!s.leading) {
    auto every = s.env->config.watchdog.worker_timeout.count() / 10;
    auto it = s.shared.find(c.name);
    if (it == s.shared.end() || it->second.second != c.accepting || now - it->second.first >= every) {
      s.shared[c.name] = {now, c.accepting};
      (*s.env->checkins)(c.name, c.accepting);
    }
  }
  if (!w->online)
    exec(self, streams::worker(c.name), domain::worker::mark_online{}, system_meta(),
         [name = c.name](command_result& r) {
           if (r && !r->events.empty())
             spdlog::info("core worker=online name={}", name);
         });
  s.schedule_needed = true;
  wake(self);

  for (auto& k : w->holds)
    if (auto r = s.model->run(k); r && lost_by(c, *r, k)) {
      spdlog::warn("core run=lost id={} worker={} reason=\"not in the worker's check-in\"",
                   k.path(), c.name);
      exec(self, k.id(),
           domain::run::lose_run{"worker " + c.name + " checked in without it (restarted?)",
                                 s.env->config.max_attempts, c.name},
           system_meta(), [](command_result&) {});
    }
  answer_checkin(self, c, std::move(cb),
                 c.hold.count() > 0 ? now + std::chrono::nanoseconds{c.hold}.count() : 0);
}

// What a check-in is answered: the runs its worker holds (assigned, with
// their rundefs and secrets) and those it is to stop. A check-in with a
// hold and nothing its worker does not know of yet waits (held_checkins)
// until a commit brings something (wake_checkins) or `hold_until_ns` (0: no
// hold) has passed, and then says it waited.
void answer_checkin(projector_actor* self, const worker_checkin& c, reply_callback cb,
                    std::int64_t hold_until_ns) {
  auto& s = self->state;
  auto w = s.model->worker(c.name);
  if (!w || w->deleted)
    return cb(error{"not_found", "no worker '" + c.name + "'"});
  std::vector<domain::run_key> held, cancel;
  bool news = false;
  for (auto& k : w->holds)
    if (auto r = s.model->run(k)) {
      if (lost_by(c, *r, k))
        continue;
      if (r->assigned()) {
        held.push_back(k);
        news = news || !c.known_runs.count(k.path());
      }
      if (r->cancel_requested && !r->finished()) {
        cancel.push_back(k);
        news = news || !c.known_stopping.count(k.path());
      }
    }
  bool waited = hold_until_ns > 0 && hold_until_ns <= now_ns();
  if (!news && hold_until_ns > 0 && !waited) {
    s.held_checkins[c.name].push_back({hold_until_ns, c, std::move(cb)});
    return;
  }
  if (held.empty())
    return cb(reply{checkin_reply{{}, std::move(cancel), waited}});

  // Each run's rundef from its actor, and its project's secrets, opened.
  struct gather {
    std::vector<handed_run> runs;
    std::size_t left = 0;
    std::map<std::string, nlohmann::json> secrets;
  };
  auto g = std::make_shared<gather>();
  g->left = held.size();
  auto finish = [=] {
    auto console = self->state.env->config.console;
    std::vector<handed_run> handed;
    for (auto& h : g->runs) {
      auto rundef = nlohmann::json::parse(h.rundef, nullptr, false);
      if (!rundef.is_object()) {  // never expected: the run's state holds a rundef once queued
        spdlog::error("core run=not_handed id={} reason=\"its state holds no rundef\"", h.run.path());
        continue;
      }
      // A pull request from a fork never sees the project's secrets.
      bool untrusted = rundef.contains("env") && rundef["env"].is_object()
                       && rundef["env"].value(domain::untrusted_param, "") == "1";
      rundef["secrets"] = untrusted ? nlohmann::json::object() : g->secrets[h.run.project];
      // A requeued run's console goes on after what its lost attempt sent.
      if (auto size = console ? console->console_size(h.run.path()) : result<std::uint64_t>{0ull})
        rundef["console_offset"] = *size;
      h.rundef = rundef.dump();
      handed.push_back(std::move(h));
    }
    cb(reply{checkin_reply{std::move(handed), cancel, waited}});
  };
  std::set<std::string> projects;
  for (auto& k : held)
    projects.insert(k.project);
  g->left += projects.size();
  for (auto& project : projects)
    peek(self, streams::project(project), [=](state_result& r) {
      auto& secrets = g->secrets[project] = nlohmann::json::object();
      if (r)
        if (auto ps = std::get_if<domain::project::state>(&*r))
          secrets = opened_secrets(self, *ps);
      if (--g->left == 0)
        finish();
    });
  for (auto& k : held)
    peek(self, k.id(), [=](state_result& r) {
      if (r)
        if (auto rs = std::get_if<domain::run::state>(&*r))
          g->runs.push_back({k, rs->rundef});
      if (--g->left == 0)
        finish();
    });
}

// Held check-ins of `worker` asked again: a commit may have brought news.
void wake_checkins(projector_actor* self, const std::string& worker) {
  auto& s = self->state;
  auto it = s.held_checkins.find(worker);
  if (it == s.held_checkins.end())
    return;
  auto held = std::move(it->second);
  s.held_checkins.erase(it);
  for (auto& h : held)
    answer_checkin(self, h.c, std::move(h.cb), h.until_ns);
}

// Held check-ins whose hold is over (checked each second), or all of them.
void release_checkins(projector_actor* self, bool all) {
  auto& s = self->state;
  auto now = now_ns();
  for (auto it = s.held_checkins.begin(); it != s.held_checkins.end();) {
    auto& list = it->second;
    std::vector<projector_state::held_checkin> due;
    for (auto h = list.begin(); h != list.end();)
      if (all || h->until_ns <= now) {
        due.push_back(std::move(*h));
        h = list.erase(h);
      } else {
        ++h;
      }
    it = list.empty() ? s.held_checkins.erase(it) : std::next(it);
    for (auto& h : due)
      if (all)  // the core stops: nothing new, and no time to gather
        h.cb(reply{checkin_reply{{}, {}, true}});
      else
        answer_checkin(self, h.c, std::move(h.cb), h.until_ns);
  }
}

// Verified and decided with the project's secrets opened (domain/webhooks),
// then one build allocated per trigger it names.
void webhook(projector_actor* self, const receive_webhook& x, const request_context& ctx,
             reply_callback cb) {
  auto p = self->state.model->project(x.project);
  if (!p || p->deleted || !p->definition)
    return cb(error{"not_found", "no project '" + x.project + "'"});
  peek(self, streams::project(x.project), [=](state_result& r) {
    if (!r)
      return cb(r.error());
    auto& ps = std::get<domain::project::state>(*r);
    if (!ps.definition)
      return cb(error{"not_found", "no project '" + x.project + "'"});
    auto secrets = opened_secrets(self, ps);
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    auto decided = domain::decide_webhook(*ps.definition, secrets,
                                          {x.kind, x.headers, x.body, x.trigger, now});
    if (!decided)
      return cb(decided.error());
    auto builds = std::move(decided->builds);
    auto note = decided->note;
    if (builds.empty())
      return cb(reply{webhook_ack{{}, {}, note}});
    spdlog::info("core webhook=accepted kind={} project={} builds={}", x.kind, x.project,
                 builds.size());
    struct tally {
      webhook_ack ack;
      std::size_t left = 0;
      std::optional<error> failed;
    };
    auto t = std::make_shared<tally>();
    t->ack.note = note;
    t->left = builds.size();
    for (auto& b : builds)
      allocate(self, x.project, std::move(b), ctx, [=](result<reply> made) {
        if (!made)
          t->failed = made.error();
        else if (auto ref = std::get_if<build_ref>(&*made)) {
          t->ack.builds.push_back(ref->build);
          t->ack.seq = std::max(t->ack.seq, ref->seq);
        }
        if (--t->left > 0)
          return;
        if (t->failed && t->ack.builds.empty())
          return cb(*t->failed);
        std::sort(t->ack.builds.begin(), t->ack.builds.end());
        cb(reply{t->ack});
      });
  });
}

void handle(projector_actor* self, request& req, const request_context& ctx, reply_callback cb) {
  auto& s = self->state;
  std::visit(
    [&](auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, put_project>) {
        simple(self, streams::project(x.name), domain::project::put_definition{x.name, x.yaml}, ctx,
               cb);
      } else if constexpr (std::is_same_v<T, delete_project>) {
        simple(self, streams::project(x.name),
               domain::project::delete_project{"deleted by " + ctx.principal}, ctx, cb);
      } else if constexpr (std::is_same_v<T, set_secret>) {
        simple(self, streams::project(x.project),
               domain::project::set_secret{x.key, s.env->secrets.seal(x.value)}, ctx, cb);
      } else if constexpr (std::is_same_v<T, remove_secret>) {
        simple(self, streams::project(x.project), domain::project::remove_secret{x.key}, ctx, cb);
      } else if constexpr (std::is_same_v<T, receive_webhook>) {
        webhook(self, x, ctx, cb);
      } else if constexpr (std::is_same_v<T, start_notification>) {
        auto now_ms = now_ns() / 1'000'000;
        exec(self, streams::build(x.project, x.build),
             domain::build::start_notification{x.id, now_ms, x.lease_ms}, meta_for(ctx),
             [=](command_result& r) {
               if (!r)
                 return cb(r.error());
               std::uint32_t attempt = 0;
               for (auto& e : r->events)
                 if (auto st = std::get_if<notification_started>(&e))
                   attempt = st->attempt;
               reply_when_seen(self, r->seq, cb, notification_claim{r->seq, attempt});
             });
      } else if constexpr (std::is_same_v<T, pin_build>) {
        simple(self, streams::build(x.project, x.build),
               domain::build::pin_build{x.name, x.reason.empty() ? "pinned by " + ctx.principal : x.reason},
               ctx, cb);
      } else if constexpr (std::is_same_v<T, unpin_build>) {
        simple(self, streams::build(x.project, x.build),
               domain::build::unpin_build{x.reason.empty() ? "unpinned by " + ctx.principal : x.reason},
               ctx, cb);
      } else if constexpr (std::is_same_v<T, archive_console>) {
        simple(self, x.run.id(), domain::run::archive_console{x.object, x.size, x.sha256}, ctx, cb);
      } else if constexpr (std::is_same_v<T, expire_artifacts>) {
        simple(self, x.run.id(), domain::run::expire_artifacts{x.reason}, ctx, cb);
      } else if constexpr (std::is_same_v<T, finish_notification>) {
        simple(self, streams::build(x.project, x.build),
               domain::build::finish_notification{x.id, x.attempt, x.delivered, x.detail,
                                                  x.retry_at_ms},
               ctx, cb);
      } else if constexpr (std::is_same_v<T, record_git_refs>) {
        simple(self, streams::project(x.project),
               domain::project::record_git_refs{x.trigger, x.url, x.refs, x.skip}, ctx, cb);
      } else if constexpr (std::is_same_v<T, trigger_build>) {
        allocate(self, x.project,
                 domain::project::allocate_build{x.trigger, x.params, x.ref, x.sha, x.reason,
                                                 x.priority, 0, 0, {}},
                 ctx, cb);
      } else if constexpr (std::is_same_v<T, rerun_build>) {
        auto b = s.model->build(x.project, x.build);
        if (!b)
          return cb(error{"not_found", "no build " + x.project + "/" + std::to_string(x.build)});
        std::vector<std::string> only;
        if (x.failed_only) {
          for (auto& r : b->runs)
            if (r.finished() && r.status != kiln::status::passed)
              only.push_back(r.name);
          if (only.empty())
            return cb(error{"conflict", "build " + std::to_string(x.build) + " has no failed run"});
        }
        auto& f = b->facts;
        allocate(self, x.project,
                 domain::project::allocate_build{f.trigger, f.params, f.ref, f.sha,
                                                 "rerun of build " + std::to_string(x.build),
                                                 f.priority, f.definition_version, x.build, only},
                 ctx, cb);
      } else if constexpr (std::is_same_v<T, cancel_build>) {
        simple(self, streams::build(x.project, x.build),
               domain::build::cancel_build{"cancelled by " + ctx.principal}, ctx, cb);
      } else if constexpr (std::is_same_v<T, cancel_run>) {
        simple(self, x.run.id(), domain::run::cancel_run{"cancelled by " + ctx.principal},
               ctx, cb);
      } else if constexpr (std::is_same_v<T, register_worker>) {
        // With a command id the token can be made again for a retried
        // request (the log keeps only its hash).
        auto token = domain::make_worker_token(
          x.name, ctx.command_id.empty()
                    ? domain::random_secret()
                    : s.env->secrets.derive("worker-token/" + x.name + "/" + ctx.command_id));
        exec(self, streams::worker(x.name),
             domain::worker::register_worker{x.name, x.tags, x.concurrency, x.host_json,
                                             domain::project::content_hash(token)},
             meta_for(ctx), [=](command_result& r) {
               if (!r)
                 return cb(r.error());
               reply_when_seen(self, r->seq, cb, worker_token{r->seq, token});
             });
      } else if constexpr (std::is_same_v<T, enlist_worker>) {
        simple(self, streams::worker(x.name), domain::worker::enlist_worker{}, ctx, cb);
      } else if constexpr (std::is_same_v<T, delist_worker>) {
        simple(self, streams::worker(x.name),
               domain::worker::delist_worker{"delisted by " + ctx.principal}, ctx, cb);
      } else if constexpr (std::is_same_v<T, delete_worker>) {
        simple(self, streams::worker(x.name),
               domain::worker::delete_worker{"deleted by " + ctx.principal}, ctx, cb);
      } else if constexpr (std::is_same_v<T, issue_token>) {
        issue(self, x, ctx, cb);
      } else if constexpr (std::is_same_v<T, revoke_token>) {
        simple(self, streams::token(x.id),
               domain::token::revoke_token{"revoked by " + ctx.principal}, ctx, cb);
      } else if constexpr (std::is_same_v<T, append_console>) {
        write_console(self, x, std::move(cb));
      } else if constexpr (std::is_same_v<T, worker_checkin>) {
        checkin(self, x, cb);
      } else if constexpr (std::is_same_v<T, report_run>) {
        if (x.status == kiln::status::running)
          simple(self, x.run.id(), domain::run::start_run{x.worker}, ctx, cb);
        else
          simple(self, x.run.id(),
                 domain::run::complete_run{x.worker, x.status, x.exit_code, x.message,
                                           final_console_size(self, x)},
                 ctx, cb);
      } else if constexpr (std::is_same_v<T, store_artifact>) {
        simple(self, x.run.id(),
               domain::run::store_artifact{x.worker, x.path, x.size, x.sha256}, ctx, cb);
      } else if constexpr (std::is_same_v<T, report_tests>) {
        simple(self, x.run.id(), domain::run::report_tests{x.worker, x.suite, x.results},
               ctx, cb);
      }
    },
    req);
}

project_info info_of(const domain::project_summary& p) {
  std::string last_status;
  std::int64_t last_created = 0, last_completed = 0;
  if (auto it = p.builds.find(p.last_build); it != p.builds.end()) {
    auto& b = it->second;
    last_status = kiln::to_string(b.completed ? b.result : kiln::status::running);
    last_created = b.created_ns;
    last_completed = b.completed_ns;
  }
  return {p.name,
          p.deleted,
          p.definition_version,
          p.content_sha256,
          p.definition ? p.definition->description : std::string{},
          p.synchronous(),
          {p.secret_keys.begin(), p.secret_keys.end()},
          p.last_build,
          p.created_ns,
          p.updated_ns,
          std::move(last_status),
          last_created,
          last_completed};
}

std::vector<trigger_info> triggers_of(const domain::project_summary& p) {
  std::vector<trigger_info> out;
  if (p.definition)
    for (auto& t : p.definition->triggers)
      out.push_back({t.name, std::string{domain::to_string(t.type)}, t.params});
  return out;
}

void answer(projector_actor* self, const query& q, query_callback cb) {
  auto& m = *self->state.model;
  std::visit(
    [&](auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, list_projects>) {
        std::vector<project_info> out;
        for (auto& [name, p] : m.projects())
          if (!p.deleted && p.definition_version > 0)
            out.push_back(info_of(p));
        cb(query_result{std::move(out)});
      } else if constexpr (std::is_same_v<T, get_project>) {
        auto p = m.project(x.name);
        if (!p || p->deleted || p->definition_version == 0)
          return cb(error{"not_found", "no project '" + x.name + "'"});
        auto info = info_of(*p);
        auto triggers = triggers_of(*p);
        peek(self, streams::project(x.name), [=](state_result& r) {
          if (!r)
            return cb(r.error());
          auto& ps = std::get<domain::project::state>(*r);
          cb(query_result{project_detail{info, ps.yaml, triggers, ps.cron_slots, ps.git_refs}});
        });
      } else if constexpr (std::is_same_v<T, list_builds>) {
        if (!m.project(x.project))
          return cb(error{"not_found", "no project '" + x.project + "'"});
        std::vector<domain::build_summary> out;
        for (auto b : m.builds(x.project, x.limit, x.before))
          out.push_back(*b);
        cb(query_result{std::move(out)});
      } else if constexpr (std::is_same_v<T, get_build>) {
        auto b = m.build(x.project, x.build);
        if (!b)
          return cb(error{"not_found", "no build " + x.project + "/" + std::to_string(x.build)});
        cb(query_result{*b});
      } else if constexpr (std::is_same_v<T, get_run>) {
        auto summary = m.readable_run(x.run);
        if (!summary)
          return cb(error{"not_found", "no run " + x.run.stream()});
        peek(self, x.run.id(), [=](state_result& st) {
          if (!st)
            return cb(st.error());
          cb(query_result{run_detail{*summary, std::get<domain::run::state>(*st)}});
        });
      } else if constexpr (std::is_same_v<T, list_workers>) {
        std::vector<worker_info> out;
        auto& seen = self->state.last_seen;
        for (auto& [name, w] : m.workers())
          if (!w.deleted && !w.token_sha256.empty()) {
            auto at = seen.find(name);
            out.push_back({w, at == seen.end() ? 0 : at->second});
          }
        cb(query_result{std::move(out)});
      } else if constexpr (std::is_same_v<T, get_queue>) {
        cb(query_result{domain::explain_queue(m, self->state.assigning)});
      } else if constexpr (std::is_same_v<T, authenticate>) {
        auto g = domain::authenticate(m, x.token);
        if (!g)
          return cb(g.error());
        cb(query_result{std::move(*g)});
      } else if constexpr (std::is_same_v<T, read_console>) {
        auto r = m.readable_run(x.run);
        if (!r)
          return cb(error{"not_found", "no run " + x.run.path()});
        auto console = self->state.env->config.console;
        if (!console)
          return cb(error{"unavailable", "this core keeps no console logs"});
        // The status first: bytes read after it was final are all there are,
        // once this core's copy of the consoles holds what the run ended
        // with (a cluster copies consoles and commits apart). A follower told
        // "not finished" reads again (gateway_options::follow_recheck).
        auto finished = r->finished();
        auto status = r->status;
        auto size = console->console_size(x.run.path());
        if (!size)
          return cb(size.error());
        if (finished && *size < r->console_size)
          finished = false;
        auto data = console->read_console(x.run.path(), x.offset, x.max);
        if (!data)
          return cb(data.error());
        cb(query_result{console_text{x.offset, std::move(*data), *size, finished, status}});
      } else if constexpr (std::is_same_v<T, list_git_pollers>) {
        std::vector<git_poller_info> out;
        for (auto& [pname, p] : m.projects()) {
          if (p.deleted || !p.definition)
            continue;
          for (auto& t : p.definition->triggers) {
            if (t.type != domain::trigger_type::git_poller)
              continue;
            git_poller_info g{pname, t.name, {}, {}, t.poll_interval_s, {}, t.git_token};
            auto param = [&](const char* key) {
              auto it = t.params.find(key);
              return it == t.params.end() ? std::string{} : it->second;
            };
            g.urls = domain::split_list_param(param("GIT_URL"));
            g.ref_globs = domain::split_list_param(param("GIT_POLL_REFS"));
            if (auto seen = p.git_refs.find(t.name); seen != p.git_refs.end())
              g.seen = seen->second;
            out.push_back(std::move(g));
          }
        }
        cb(query_result{std::move(out)});
      } else if constexpr (std::is_same_v<T, list_unarchived_consoles>) {
        cb(query_result{domain::consoles_to_archive(m, x.limit)});
      } else if constexpr (std::is_same_v<T, list_expired_artifacts>) {
        cb(query_result{domain::expired_artifacts(m, now_ns())});
      } else if constexpr (std::is_same_v<T, list_due_notifications>) {
        cb(query_result{domain::due_notifications(m, now_ns() / 1'000'000)});
      } else if constexpr (std::is_same_v<T, open_secret>) {
        peek(self, streams::project(x.project), [=](state_result& r) {
          if (!r)
            return cb(r.error());
          auto& ps = std::get<domain::project::state>(*r);
          auto it = ps.secrets.find(x.key);
          if (it == ps.secrets.end())
            return cb(error{"not_found", "project " + x.project + " has no secret '" + x.key + "'"});
          auto clear = self->state.env->secrets.open(it->second);
          if (!clear)
            return cb(clear.error());
          cb(query_result{secret_value{*clear}});
        });
      } else if constexpr (std::is_same_v<T, get_stats>) {
        core_metrics out;
        out.seq = m.seq();
        out.queue_length = m.queue().size();
        for (auto& [pname, p] : m.projects())
          for (auto& [n, b] : p.builds)
            for (auto& run : b.runs)
              ++out.runs_by_status[std::string{kiln::to_string(run.status)}];
        for (auto& [wname, w] : m.workers())
          out.workers_online += w.online && !w.deleted;
        cb(query_result{std::move(out)});
      } else if constexpr (std::is_same_v<T, list_tokens>) {
        std::vector<domain::token_summary> out;
        for (auto& [id, t] : m.tokens())
          if (!t.revoked)
            out.push_back(t);
        cb(query_result{std::move(out)});
      }
    },
    q);
}

// Picks up whatever was under way, at a start or when this core starts
// leading: every open build, and every online worker gets a full timeout
// to check in again.
void take_over(projector_actor* self) {
  auto& s = self->state;
  for (auto& id : s.model->open_builds())
    s.dirty.insert(id);
  auto now = now_ns();
  for (auto& [name, w] : s.model->workers())
    if (w.online)
      s.last_seen[name] = now;
  s.schedule_needed = true;
  wake(self);
}

caf::behavior projector(projector_actor* self, env_ptr env, caf::actor registry,
                        std::shared_ptr<domain::read_model> model) {
  auto& s = self->state;
  s.env = env;
  s.registry = registry;
  s.model = std::move(model);
  s.leading = env->config.leading;
  take_over(self);
  self->delayed_send(self, env->config.watchdog_interval, tick_atom::value);
  self->send(self, cron_atom::value);
  return {
    [=](cron_atom) {
      expire_calls(self);
      release_checkins(self, false);
      auto now = std::chrono::system_clock::now();
      auto unix_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
      if (self->state.leading)
        for (auto& step : domain::cron_steps(*self->state.model, unix_s))
          run_step(self, step);
      // Just after the next whole second: a seconds field fires on time.
      auto into = now.time_since_epoch() % std::chrono::seconds{1};
      self->delayed_send(self, std::chrono::seconds{1} - into + std::chrono::milliseconds{5},
                         cron_atom::value);
    },
    [=](commit_atom, logged_commit& c) { on_commit(self, c); },
    [=](lead_atom, bool leading) {
      auto& s = self->state;
      if (s.leading == leading)
        return;
      s.leading = leading;
      spdlog::info("core leading={}", leading);
      if (leading)
        take_over(self);
    },
    [=](seen_atom, const std::string& worker, bool accepting) {
      auto& s = self->state;
      if (note_checkin(s, worker, accepting, now_ns())) {
        s.schedule_needed = true;
        wake(self);
      }
    },
    [=](process_atom) { process(self); },
    [=](drain_atom) { release_checkins(self, true); },
    [=](tick_atom) {
      auto& s = self->state;
      // A worker that came online through another core's commit checked in
      // there: it gets a full timeout from now to check in here too.
      auto now = now_ns();
      for (auto& [name, w] : s.model->workers())
        if (w.online)
          s.last_seen.emplace(name, now);
      if (s.leading)
        for (auto& step : domain::watchdog_steps(*s.model, now, s.last_seen,
                                                 s.env->config.watchdog))
          run_step(self, step);
      s.dirty.insert(s.retry_on_tick.begin(), s.retry_on_tick.end());
      s.retry_on_tick.clear();
      s.schedule_needed = true;
      wake(self);
      self->delayed_send(self, s.env->config.watchdog_interval, tick_atom::value);
    },
    [=](expire_atom, std::string& project, std::uint32_t number, std::uint64_t id) {
      auto& w = self->state.build_waiters;
      auto it = w.find({project, number});
      if (it == w.end())
        return;
      auto& list = it->second;
      for (auto x = list.begin(); x != list.end(); ++x)
        if (x->id == id) {
          auto fail = std::move(x->fail);
          list.erase(x);
          if (list.empty())
            w.erase(it);
          fail(error{"timeout", "build " + project + "/" + std::to_string(number)
                                  + " was numbered but not created in time"});
          return;
        }
    },
    [=](request_atom, request& r, request_context& ctx, global_seq min_seq, reply_callback& cb) {
      when_seen(self, min_seq, [=]() mutable { handle(self, r, ctx, std::move(cb)); });
    },
    [=](query_atom, query& q, global_seq min_seq, query_callback& cb) {
      when_seen(self, min_seq, [=] { answer(self, q, cb); });
    },
    [=](stats_atom) -> global_seq { return self->state.model->seq(); },
    [=](save_atom) -> bool {
      save_model(self);
      return true;
    },
  };
}

} // namespace

caf::actor spawn_projector(caf::actor_system& sys, env_ptr env, caf::actor registry,
                           std::shared_ptr<domain::read_model> model) {
  return sys.spawn(projector, std::move(env), std::move(registry), std::move(model));
}

} // namespace kiln::core::detail
