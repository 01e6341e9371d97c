#pragma once
// The domain core: one actor per project, build, run and worker (CAF),
// rebuilt from the event log on demand; process managers and the scheduler
// on top of live projections. This header keeps CAF out (pimpl).
#include "actors/core_api.hpp"
#include "actors/process_manager.hpp"
#include "events/result.hpp"
#include "storage/fwd.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace kiln::storage {
class secret_box;
class console_store;
}

namespace kiln::core {

struct core_config {
  // An aggregate's actor quits after this long without a command.
  std::chrono::milliseconds passivate_after{std::chrono::seconds{60}};
  // An actor saves a snapshot when this many events have passed since its
  // last one.
  std::size_t snapshot_every = 100;
  // The projections are saved after this many commits (and at stop), so
  // that a start folds only the log's tail.
  std::size_t projection_snapshot_every = 100'000;
  // Runs lost more often than this fail instead of going back to the queue.
  std::uint32_t max_attempts = 3;
  domain::watchdog_config watchdog;
  std::chrono::milliseconds watchdog_interval{std::chrono::seconds{5}};
  // How long a request waits for its reply before it fails with "timeout".
  std::chrono::milliseconds request_timeout{std::chrono::seconds{30}};
  std::size_t threads = 0;  // CAF scheduler threads; 0: CAF's default
  // Where console bytes go (must outlive the core); without one, console
  // requests fail with "unavailable".
  storage::console_store* console = nullptr;
  // Whether this core starts out running the process managers, the
  // watchdog and the scheduler (set_leading changes it). A cluster's cores
  // start without, and the one holding the lease (jetstream_lease.hpp) runs
  // them: the others would only race it for the same appends.
  bool leading = true;
};

struct core_stats {
  std::size_t live_actors = 0;
  std::size_t spawned = 0;
  std::size_t passivated = 0;
  global_seq projected;  // the last commit the projections hold
};

class core {
 public:
  // `log` and `secrets` must outlive the core.
  core(storage::event_log& log, const storage::secret_box& secrets, core_config config = {});
  ~core();
  core(const core&) = delete;
  core& operator=(const core&) = delete;

  // Folds the log into the projections, starts the actors, subscribes to
  // the log and lets the process managers finish what was under way.
  status_result start();
  // Stops taking requests, waits for the actors to finish, unsubscribes.
  void stop();

  template <class T>
  using callback = std::function<void(result<T>)>;

  // `done` is called exactly once, on a core thread: it must not block.
  // `min_seq`: decided only once the read model holds that commit (a
  // request reacting to an event another core published).
  void submit(request r, request_context ctx, callback<reply> done, global_seq min_seq = {});
  void ask(query q, global_seq min_seq, callback<query_result> done);

  // Blocking forms for tools, tests and benchmarks (never call them from a
  // core or Asio thread).
  result<reply> call(request r, request_context ctx = {});
  result<query_result> read(query q, global_seq min_seq = {});

  core_stats stats() const;
  // This core now runs the process managers, the watchdog and the
  // scheduler (picking up every open build, and giving every online worker
  // a full timeout), or no longer does. Never blocks.
  void set_leading(bool leading);

  // In a cluster, check-ins go to any core, and the leading one's watchdog
  // and scheduler must count them all. `share` is told of each check-in
  // this core answers while another leads: at most every
  // worker_timeout / 10 per worker, or when the worker starts or stops
  // taking runs. It is called on a core thread and must not block; an
  // empty one stops the calls (none is under way once this returns).
  void share_checkins(std::function<void(const std::string& worker, bool accepting)> share);
  // A check-in another core answered (what its `share` passed on).
  void worker_seen(const std::string& worker, bool accepting);

  // `f` hears of each commit as soon as the read model holds it, in order,
  // on a core thread: whoever publishes it from there lets the readers who
  // react to it (a check-in woken by RunAssigned, a follower by
  // RunCompleted) find it in every answer. It must not block; an empty one
  // stops the calls (none is under way once this returns).
  void on_applied(std::function<void(const logged_commit&)> f);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
