// One CAF actor per aggregate instance (stream), and the registry that
// spawns them on demand and lets them go when idle.
//
// A host handles commands in rounds: the commands that arrived while the
// previous round's appends were in flight are decided one after another
// against the state as it will be (each sees the one before), and all their
// appends go to the log at once with consecutive expected versions, so they
// share one group commit. The state is kept only when every append of the
// round succeeded; otherwise it is reloaded from the log and the commands
// that did not land are decided again, as after any conflict: a few times
// on a single node, and in a cluster for as long as a request may wait (two
// cores appending to one busy aggregate, a project numbering builds, each
// win the race in turn; a count let an unlucky trigger fail).
#include "actors/core_messages.hpp"

#include "actors/snapshot_codec.hpp"
#include "events/streams.hpp"
#include "storage/event_log.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <unordered_map>

namespace kiln::core::detail {

namespace {

constexpr int max_retries = 3;
using clock_type = std::chrono::steady_clock;
// A cluster's core tries again after a conflict until half the request
// timeout has passed since the command came, so that its reply comes in time.
std::chrono::milliseconds conflict_patience(const core_config& c) { return c.request_timeout / 2; }

struct project_traits {
  using state = domain::project::state;
  using command = domain::project::command;
  static auto decide(const state& s, const command& c) { return domain::project::decide(s, c); }
  static void apply(state& s, const event& e) { domain::project::apply(s, e); }
};
struct build_traits {
  using state = domain::build::state;
  using command = domain::build::command;
  static auto decide(const state& s, const command& c) { return domain::build::decide(s, c); }
  static void apply(state& s, const event& e) { domain::build::apply(s, e); }
};
struct run_traits {
  using state = domain::run::state;
  using command = domain::run::command;
  static auto decide(const state& s, const command& c) { return domain::run::decide(s, c); }
  static void apply(state& s, const event& e) { domain::run::apply(s, e); }
};
struct worker_traits {
  using state = domain::worker::state;
  using command = domain::worker::command;
  static auto decide(const state& s, const command& c) { return domain::worker::decide(s, c); }
  static void apply(state& s, const event& e) { domain::worker::apply(s, e); }
};
struct token_traits {
  using state = domain::token::state;
  using command = domain::token::command;
  static auto decide(const state& s, const command& c) { return domain::token::decide(s, c); }
  static void apply(state& s, const event& e) { domain::token::apply(s, e); }
};

// The events of the commit at `receipt` (a repeated command's first result).
command_result first_outcome(storage::event_log& log, const storage::append_receipt& receipt) {
  auto commits = log.read_all(global_seq{receipt.seq.value - 1}, 1);
  if (!commits)
    return commits.error();
  if (commits->empty() || commits->front().seq != receipt.seq)
    return error{"io", "commit " + std::to_string(receipt.seq.value) + " is not in the log"};
  return command_outcome{receipt.seq, true, std::move(commits->front().body.events)};
}

template <class Traits>
struct host_state {
  struct pending {
    typename Traits::command command;
    commit_metadata meta;
    caf::response_promise promise;
    int retries = 0;
    clock_type::time_point arrived = clock_type::now();
    std::optional<command_result> decided;  // known without an append
    std::vector<event> events;
    std::optional<result<storage::append_receipt>> appended;
  };

  stream_id stream;
  env_ptr env;
  typename Traits::state state;
  stream_version version;
  stream_version snapshot_version;
  bool loaded = false;
  std::size_t handled = 0;  // messages the registry routed here, for passivation
  std::deque<pending> queue;
  std::vector<pending> round;
  typename Traits::state round_state;
  stream_version round_version;
  std::size_t awaiting = 0;
  std::uint64_t round_id = 0;
};

template <class Traits>
using host_actor = caf::stateful_actor<host_state<Traits>>;

// The commits after the state's version, through apply. In a cluster another
// core appends to this stream too and this core's copy of the log has them:
// a peek must not answer, nor a round decide on, a state older than the copy.
template <class Traits>
status_result catch_up(host_state<Traits>& s) {
  for (;;) {
    auto commits = s.env->log.read_stream(s.stream, stream_version{s.version.value + 1}, 1024);
    if (!commits)
      return commits.error();
    for (auto& c : *commits) {
      for (auto& e : c.body.events)
        Traits::apply(s.state, e);
      s.version = c.body.last_version();
    }
    if (commits->size() < 1024)
      return ok;
  }
}

// Snapshot, then the stream's tail through apply: the same code as replay.
template <class Traits>
status_result load(host_state<Traits>& s) {
  s.state = {};
  s.version = s.snapshot_version = stream_version{0};
  auto& log = s.env->log;
  if (auto snap = log.load_snapshot(s.stream); snap && *snap) {
    typename Traits::state restored;
    if (domain::decode_snapshot((*snap)->bytes, restored)) {
      s.state = std::move(restored);
      s.version = s.snapshot_version = (*snap)->version;
    }
  }
  if (auto tail = catch_up(s); !tail)
    return tail;
  s.loaded = true;
  return ok;
}

// The state as of this core's copy of the log: loaded once, then its tail.
template <class Traits>
status_result refresh(host_state<Traits>& s) {
  auto r = s.loaded ? catch_up(s) : load(s);
  if (!r)
    s.loaded = false;
  return r;
}

template <class Traits>
void maybe_snapshot(host_state<Traits>& s) {
  if (s.version.value - s.snapshot_version.value < s.env->config.snapshot_every)
    return;
  auto saved = s.env->log.save_snapshot(s.stream, {s.version, domain::encode_snapshot(s.state)});
  if (saved)
    s.snapshot_version = s.version;
  else
    spdlog::warn("core snapshot=failed stream={} error=\"{}\"", s.stream.value,
                 saved.error().message);
}

template <class Traits>
void start_round(host_actor<Traits>* self);

template <class Traits>
void finish_round(host_actor<Traits>* self) {
  auto& s = self->state;
  auto round = std::move(s.round);
  s.round.clear();
  // The first command whose append did not land, if any.
  std::size_t failed = round.size();
  for (std::size_t i = 0; i < round.size() && failed == round.size(); ++i)
    if (round[i].appended && (!*round[i].appended || (*round[i].appended)->duplicate))
      failed = i;
  if (failed == round.size()) {
    s.state = std::move(s.round_state);
    s.version = s.round_version;
    maybe_snapshot(s);
  } else if (auto reloaded = load(s); !reloaded) {
    spdlog::error("core reload=failed stream={} error=\"{}\"", s.stream.value,
                  reloaded.error().message);
    s.loaded = false;
  }
  std::deque<typename host_state<Traits>::pending> again;
  for (std::size_t i = 0; i < round.size(); ++i) {
    auto& p = round[i];
    if (i < failed) {
      if (p.decided)
        p.promise.deliver(std::move(*p.decided));
      else
        p.promise.deliver(command_result{command_outcome{(*p.appended)->seq, false, std::move(p.events)}});
      continue;
    }
    // At or after the failure: what was decided there assumed appends that
    // did not land.
    if (p.appended && *p.appended && (*p.appended)->duplicate) {
      p.promise.deliver(first_outcome(s.env->log, **p.appended));
      continue;
    }
    // It landed all the same: a duplicate before it (another core made that
    // command's commit first) left the stream where this one expected it.
    if (p.appended && *p.appended) {
      p.promise.deliver(command_result{command_outcome{(*p.appended)->seq, false, std::move(p.events)}});
      continue;
    }
    bool conflict = p.appended && !*p.appended && p.appended->error().code == "conflict";
    bool undecided = !p.appended;  // decided against a state that did not happen
    bool patient = s.env->log.replica()
                   && clock_type::now() - p.arrived < conflict_patience(s.env->config);
    if ((conflict || undecided) && (p.retries < max_retries || patient)) {
      p.retries += conflict ? 1 : 0;
      p.decided.reset();
      p.appended.reset();
      p.events.clear();
      again.push_back(std::move(p));
      continue;
    }
    if (p.appended && !*p.appended)
      p.promise.deliver(command_result{p.appended->error()});
    else if (p.decided)
      p.promise.deliver(std::move(*p.decided));
  }
  while (!again.empty()) {
    s.queue.push_front(std::move(again.back()));
    again.pop_back();
  }
  if (!s.queue.empty())
    start_round(self);
}

template <class Traits>
void start_round(host_actor<Traits>* self) {
  auto& s = self->state;
  if (auto loaded = refresh(s); !loaded) {
    for (auto& p : s.queue)
      p.promise.deliver(command_result{loaded.error()});
    s.queue.clear();
    return;
  }
  s.round.assign(std::make_move_iterator(s.queue.begin()), std::make_move_iterator(s.queue.end()));
  s.queue.clear();
  ++s.round_id;
  s.round_state = s.state;
  s.round_version = s.version;
  auto& log = s.env->log;
  for (std::size_t i = 0; i < s.round.size(); ++i) {
    auto& p = s.round[i];
    if (!p.meta.command_id.empty())
      if (auto first = log.find_command(p.meta.command_id)) {
        p.decided = first_outcome(log, *first);
        continue;
      }
    auto events = Traits::decide(s.round_state, p.command);
    if (!events) {
      p.decided = command_result{events.error()};
      continue;
    }
    if (events->empty()) {
      p.decided = command_result{command_outcome{}};
      continue;
    }
    for (auto& e : *events)
      Traits::apply(s.round_state, e);
    auto expected = s.round_version;
    s.round_version.value += events->size();
    p.events = *events;
    ++s.awaiting;
    auto me = caf::actor_cast<caf::actor>(self);
    log.append_async({s.stream, expected, std::move(*events), p.meta},
                     [me, id = s.round_id, i](result<storage::append_receipt> r) {
                       caf::anon_send(me, appended_atom::value, id, i, append_result{std::move(r)});
                     });
  }
  if (s.awaiting == 0)
    finish_round(self);
}

template <class Traits>
caf::behavior aggregate_host(host_actor<Traits>* self, stream_id stream, env_ptr env) {
  self->state.stream = std::move(stream);
  self->state.env = env;
  return {
    [=](exec_atom, domain_command& c) -> caf::result<command_result> {
      auto& s = self->state;
      ++s.handled;
      auto command = std::get_if<typename Traits::command>(&c.command);
      if (!command)
        return command_result{error{"invalid_argument", "wrong command for " + s.stream.value}};
      auto promise = self->make_response_promise();
      s.queue.push_back({std::move(*command), std::move(c.meta), promise, 0, clock_type::now(), {}, {}, {}});
      if (s.awaiting == 0 && s.round.empty())
        start_round(self);
      return promise;
    },
    [=](peek_atom) -> state_result {
      auto& s = self->state;
      ++s.handled;
      if (auto loaded = refresh(s); !loaded)
        return loaded.error();
      return aggregate_state{s.state};
    },
    [=](appended_atom, std::uint64_t round_id, std::size_t index, append_result& r) {
      auto& s = self->state;
      if (round_id != s.round_id || index >= s.round.size())
        return;
      s.round[index].appended = std::move(r.value);
      if (--s.awaiting == 0)
        finish_round(self);
    },
    // The registry saw no message for this stream for a while. Go only if
    // everything it routed here has been handled and nothing is pending.
    [=](passivate_atom, std::size_t routed) -> bool {
      auto& s = self->state;
      if (routed != s.handled || s.awaiting > 0 || !s.queue.empty() || !s.round.empty())
        return false;
      if (s.loaded && s.version != s.snapshot_version)
        maybe_snapshot(s);
      self->quit();
      return true;
    },
  };
}

struct registry_state {
  struct entry {
    caf::actor host;
    std::size_t routed = 0;
    clock_type::time_point last_used;
    bool leaving = false;  // asked to passivate; hold its messages
    // Messages that came while it was leaving: each forwards itself to
    // whichever host serves the stream next.
    std::vector<std::function<void(const caf::actor&)>> held;
  };
  std::unordered_map<std::string, entry> hosts;
  std::size_t spawned = 0;
  std::size_t passivated = 0;
};

using registry_actor = caf::stateful_actor<registry_state>;

void spawn_host(registry_actor* self, const stream_id& stream, registry_state::entry& e,
                const env_ptr& env) {
  auto kind = streams::kind_of(stream);
  if (kind == "project")
    e.host = self->spawn(aggregate_host<project_traits>, stream, env);
  else if (kind == "build")
    e.host = self->spawn(aggregate_host<build_traits>, stream, env);
  else if (kind == "run")
    e.host = self->spawn(aggregate_host<run_traits>, stream, env);
  else if (kind == "token")
    e.host = self->spawn(aggregate_host<token_traits>, stream, env);
  else
    e.host = self->spawn(aggregate_host<worker_traits>, stream, env);
  e.routed = 0;
  ++self->state.spawned;
}

// Passivation is driven from here rather than by a timeout in every host:
// a per-actor timeout re-arms a timer on every message, which costs more
// than the work itself under load. One sweep asks the idle hosts to go.
void sweep(registry_actor* self, const env_ptr& env) {
  auto now = clock_type::now();
  for (auto& [stream, e] : self->state.hosts) {
    if (e.leaving || now - e.last_used < env->config.passivate_after)
      continue;
    e.leaving = true;
    auto key = stream;
    self->request(e.host, caf::infinite, passivate_atom::value, e.routed)
      .then(
        [=](bool gone) {
          auto it = self->state.hosts.find(key);
          if (it == self->state.hosts.end())
            return;
          auto& entry = it->second;
          entry.leaving = false;
          if (gone) {
            ++self->state.passivated;
            if (entry.held.empty()) {
              self->state.hosts.erase(it);
              return;
            }
            spawn_host(self, stream_id{key}, entry, env);
          }
          // What came meanwhile goes to the (possibly new) host, in order.
          for (auto& forward : entry.held) {
            ++entry.routed;
            forward(entry.host);
          }
          entry.held.clear();
        },
        [=](caf::error&) {
          // The host is gone without answering: start afresh on next use.
          auto it = self->state.hosts.find(key);
          if (it != self->state.hosts.end() && it->second.held.empty())
            self->state.hosts.erase(it);
        });
  }
}

caf::behavior registry(registry_actor* self, env_ptr env) {
  // The stream's host, or null while that host is deciding whether to
  // passivate (the caller then holds the message).
  auto route = [=](const stream_id& stream) -> registry_state::entry& {
    auto& e = self->state.hosts[stream.value];
    e.last_used = clock_type::now();
    if (!e.host)
      spawn_host(self, stream, e, env);
    if (!e.leaving)
      ++e.routed;
    return e;
  };
  // Hosts are not linked to the registry: CAF scans an actor's links on
  // every link and unlink, which is quadratic with thousands of hosts. The
  // registry stops the live ones itself when it is told to stop.
  self->set_exit_handler([=](caf::exit_msg& m) {
    for (auto& [stream, e] : self->state.hosts)
      self->send_exit(e.host, m.reason);
    self->quit(m.reason);
  });
  auto interval = std::max<std::chrono::milliseconds>(env->config.passivate_after / 2,
                                                      std::chrono::milliseconds{10});
  self->delayed_send(self, interval, tick_atom::value);
  return {
    [=](exec_atom a, domain_command& c) -> caf::result<command_result> {
      auto& e = route(c.stream);
      auto promise = self->make_response_promise();
      if (e.leaving)
        e.held.push_back([promise, a, c](const caf::actor& host) mutable {
          promise.delegate(host, a, std::move(c));
        });
      else
        promise.delegate(e.host, a, std::move(c));
      return promise;
    },
    [=](peek_atom a, stream_id& stream) -> caf::result<state_result> {
      auto& e = route(stream);
      auto promise = self->make_response_promise();
      if (e.leaving)
        e.held.push_back([promise, a](const caf::actor& host) mutable { promise.delegate(host, a); });
      else
        promise.delegate(e.host, a);
      return promise;
    },
    [=](tick_atom) {
      sweep(self, env);
      self->delayed_send(self, interval, tick_atom::value);
    },
    [=](stats_atom) -> registry_stats {
      return {self->state.hosts.size(), self->state.spawned, self->state.passivated};
    },
  };
}

} // namespace

caf::actor spawn_registry(caf::actor_system& sys, env_ptr env) {
  return sys.spawn(registry, std::move(env));
}

} // namespace kiln::core::detail
