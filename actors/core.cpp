// The core's front: sets up the actor system, rebuilds the projections from
// the log, subscribes, and turns calls into messages to the projector.
#include "actors/core.hpp"

#include "actors/core_messages.hpp"
#include "storage/event_log.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <future>
#include <mutex>

namespace kiln::core {

using namespace detail;

struct core::impl {
  storage::event_log& log;
  const storage::secret_box& secrets;
  core_config config;
  std::unique_ptr<caf::actor_system_config> system_config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor registry;
  caf::actor projector;
  std::unique_ptr<storage::subscription> subscription;
  std::shared_ptr<detail::applied_relay> applied = std::make_shared<detail::applied_relay>();
  std::shared_ptr<detail::checkin_relay> checkins = std::make_shared<detail::checkin_relay>();
  std::mutex lead_mu;  // config.leading and the projector's knowledge of it change together
};

core::core(storage::event_log& log, const storage::secret_box& secrets, core_config config)
    : impl_{new impl{log, secrets, std::move(config)}} {}

core::~core() { stop(); }

status_result core::start() {
  auto& p = *impl_;
  auto t0 = std::chrono::steady_clock::now();
  auto model = std::make_shared<domain::read_model>();
  // From the projections' snapshot when there is a usable one.
  if (auto snap = p.log.load_snapshot(read_model_snapshot); snap && *snap
      && (*snap)->version.value <= p.log.last_seq().value) {
    if (auto saved = domain::read_model::decode((*snap)->bytes))
      *model = std::move(*saved);
    else
      spdlog::warn("core projections=snapshot_ignored reason=undecodable");
  }
  auto from_snapshot = model->seq();
  for (;;) {
    auto commits = p.log.read_all(model->seq(), 4096);
    if (!commits)
      return commits.error();
    for (auto& c : *commits)
      model->apply(c);
    if (commits->size() < 4096)
      break;
  }
  p.system_config = std::make_unique<caf::actor_system_config>();
  // A shared queue with a condition variable instead of work stealing: the
  // stealing workers spin (take_tail, sched_yield) and, on a 2-core machine,
  // take the CPU the log's writer needs (bench core: 0.37 -> see docs).
  p.system_config->set("scheduler.policy", caf::atom("sharing"));
  if (p.config.threads > 0)
    p.system_config->set("scheduler.max-threads", p.config.threads);
  p.system = std::make_unique<caf::actor_system>(*p.system_config);
  std::unique_lock lead_lock{p.lead_mu};
  auto env = std::make_shared<const environment>(environment{p.log, p.secrets, p.config, p.applied, p.checkins});
  p.registry = spawn_registry(*p.system, env);
  auto from = model->seq();
  p.projector = spawn_projector(*p.system, env, p.registry, model);
  lead_lock.unlock();
  auto projector = p.projector;
  p.subscription = p.log.subscribe(
    from,
    [projector](const logged_commit& c) {
      caf::anon_send(projector, commit_atom::value, c);
      return true;
    },
    [](const error& e) {
      spdlog::critical("core subscription=failed error={} message=\"{}\"", e.code, e.message);
    },
    // A send never blocks; the writer's hand-off saves a thread woken and a
    // read of each commit back from RocksDB.
    storage::live_delivery::writer_thread);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  spdlog::info("core started=true seq={} from_snapshot={} projects={} workers={} open_builds={} ms={}",
               from.value, from_snapshot.value, model->projects().size(), model->workers().size(),
               model->open_builds().size(), ms.count());
  return ok;
}

void core::stop() {
  auto& p = *impl_;
  if (!p.system)
    return;
  p.subscription.reset();
  caf::anon_send(p.projector, drain_atom::value);
  {
    // Save the projections so that the next start folds only what comes after.
    caf::scoped_actor self{*p.system};
    self->request(p.projector, std::chrono::seconds{30}, save_atom::value)
      .receive([](bool) {}, [](caf::error&) {});
  }
  caf::anon_send_exit(p.projector, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(p.registry, caf::exit_reason::user_shutdown);
  {
    std::lock_guard lock{p.lead_mu};
    p.projector = nullptr;
  }
  p.registry = nullptr;
  p.system->await_all_actors_done();
  p.system.reset();
  p.system_config.reset();
}

namespace {

// Refusals that commits this core's copy has not taken yet could lift: the
// run another core just assigned, the worker it just enlisted.
bool may_be_stale(const std::string& code) {
  return code == "not_found" || code == "not_assigned_to_you" || code == "not_enlisted"
         || code == "illegal_transition" || code == "unknown_trigger" || code == "unknown_version";
}

} // namespace

// In a cluster a request may rely on a commit another core made that this
// core's copy of the log does not hold yet. Such a refusal is final only
// once the copy has caught up with the cluster's log; if it took anything
// new meanwhile, the request is decided again on that.
void core::submit(request r, request_context ctx, callback<reply> done, global_seq min_seq) {
  if (!impl_->projector)
    return done(error{"unavailable", "the core is not running"});
  auto projector = impl_->projector;
  auto& log = impl_->log;
  if (!log.replica())  // it holds every commit: a refusal is final
    return caf::anon_send(projector, request_atom::value, std::move(r), std::move(ctx), min_seq,
                          reply_callback{std::move(done)});
  auto sent_at = log.last_seq();
  reply_callback first = [projector, &log, sent_at, r, ctx, done](result<reply> answer) {
    if (answer || !may_be_stale(answer.error().code))
      return done(std::move(answer));
    log.sync_async([projector, sent_at, r, ctx, done,
                    answer = std::move(answer)](std::optional<global_seq> synced) mutable {
      if (!synced || synced->value <= sent_at.value)
        return done(std::move(answer));
      caf::anon_send(projector, request_atom::value, std::move(r), std::move(ctx), *synced,
                     reply_callback{std::move(done)});
    });
  };
  caf::anon_send(projector, request_atom::value, std::move(r), std::move(ctx), min_seq,
                 std::move(first));
}

void core::ask(query q, global_seq min_seq, callback<query_result> done) {
  if (!impl_->projector)
    return done(error{"unavailable", "the core is not running"});
  caf::anon_send(impl_->projector, query_atom::value, std::move(q), min_seq,
                 query_callback{std::move(done)});
}

namespace {

// Waits for a callback-style call; the core answers every request (with a
// timeout error at worst), so this cannot hang while the core runs.
template <class T, class Start>
result<T> wait_for(Start start) {
  auto promise = std::make_shared<std::promise<result<T>>>();
  auto future = promise->get_future();
  start([promise](result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

} // namespace

result<reply> core::call(request r, request_context ctx) {
  return wait_for<reply>([&](auto done) { submit(std::move(r), std::move(ctx), done); });
}

result<query_result> core::read(query q, global_seq min_seq) {
  return wait_for<query_result>([&](auto done) { ask(std::move(q), min_seq, done); });
}

void core::on_applied(std::function<void(const logged_commit&)> f) { impl_->applied->set(std::move(f)); }

void core::set_leading(bool leading) {
  std::lock_guard lock{impl_->lead_mu};
  impl_->config.leading = leading;
  if (impl_->projector)
    caf::anon_send(impl_->projector, lead_atom::value, leading);
}

void core::share_checkins(std::function<void(const std::string&, bool)> share) {
  impl_->checkins->set(std::move(share));
}

void core::worker_seen(const std::string& worker, bool accepting) {
  std::lock_guard lock{impl_->lead_mu};  // against stop()
  if (impl_->projector)
    caf::anon_send(impl_->projector, seen_atom::value, worker, accepting);
}

core_stats core::stats() const {
  auto& p = *impl_;
  core_stats out;
  if (!p.system)
    return out;
  caf::scoped_actor self{*p.system};
  self->request(p.registry, std::chrono::seconds{10}, stats_atom::value)
    .receive([&](registry_stats& s) {
      out.live_actors = s.live;
      out.spawned = s.spawned;
      out.passivated = s.passivated;
    }, [](caf::error&) {});
  self->request(p.projector, std::chrono::seconds{10}, stats_atom::value)
    .receive([&](global_seq& seq) { out.projected = seq; }, [](caf::error&) {});
  return out;
}

} // namespace kiln::core
