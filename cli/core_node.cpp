#include "cli/core_node.hpp"

#include "actors/console_archiver.hpp"
#include "actors/core.hpp"
#include "actors/core_service.hpp"
#include "actors/git_poller.hpp"
#include "actors/retention_sweeper.hpp"
#include "cli/admin_token.hpp"
#include "cli/args.hpp"
#include "cli/data_dir.hpp"
#include "cli/node_args.hpp"
#include "events/nats_bus.hpp"
#include "events/subjects.hpp"
#include "gateway/artifact_store.hpp"
#include "storage/jetstream_console_store.hpp"
#include "storage/jetstream_event_log.hpp"
#include "storage/jetstream_lease.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <unistd.h>
#include <thread>

namespace kiln::cli {

core_node_options core_node_options_from(const args& a, const std::filesystem::path& data,
                                         std::shared_ptr<gateway::artifact_store> store) {
  core_node_options o;
  o.data = data;
  o.worker_timeout = std::chrono::seconds{a.get_u64("worker-timeout", 90)};
  if (o.worker_timeout < std::chrono::seconds{2})
    throw usage_error("--worker-timeout is at least 2 seconds");
  o.retention_every = std::chrono::seconds{a.get_u64("retention-interval", 600)};
  if (o.retention_every.count() < 1)
    throw usage_error("--retention-interval is at least 1 second");
  o.notify = notifier_options(a);
  o.event_retention = std::chrono::hours{a.get_u64("event-retention-hours", 168)};
  if (o.event_retention.count() < 1)
    throw usage_error("--event-retention-hours is at least 1");
  o.store = std::move(store);
  return o;
}

void cluster_options_from(const args& a, core_node_options& o) {
  o.cluster = a.get_list("nats");
  o.log_replicas = static_cast<int>(a.get_u64("log-replicas", 1));
  if (o.log_replicas < 1 || o.log_replicas > 5)
    throw usage_error("--log-replicas is 1 to 5 (JetStream's limit)");
  o.console_retention = std::chrono::hours{a.get_u64("console-retention-hours", 24)};
  if (o.console_retention.count() < 1)
    throw usage_error("--console-retention-hours is at least 1");
}

namespace {

// Unique to this process: a core started again must not renew its old lease.
std::string lease_holder() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  return std::string{host} + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
}

} // namespace

struct core_node::impl {
  core_node_options o;
  std::unique_ptr<storage::rocksdb_event_log> local;
  // In a cluster: the JetStream log and consoles over `local`.
  std::unique_ptr<storage::jetstream_event_log> cluster_log;
  std::unique_ptr<storage::jetstream_console_store> cluster_console;
  storage::event_log* log = nullptr;
  storage::console_store* console = nullptr;
  std::unique_ptr<storage::secret_box> box;
  std::unique_ptr<core::core> domain;
  std::unique_ptr<core::core_service> service;
  std::unique_ptr<storage::jetstream_lease> lease;  // in a cluster: whether this core leads
  std::unique_ptr<core::git_poller> poller;
  std::unique_ptr<core::notifier> notifier;
  std::unique_ptr<core::console_archiver> archiver;
  std::unique_ptr<core::retention_sweeper> sweeper;
};

result<std::unique_ptr<core_node>> core_node::start(bus::bus& b, core_node_options o) {
  auto i = std::make_unique<impl>();
  i->o = std::move(o);
  auto& data = i->o.data;
  bool cluster = !i->o.cluster.empty();
  // A core's copy of the cluster's log is not synced: JetStream keeps the
  // commits, and a copy that lost its last ones takes them again.
  auto log = storage::rocksdb_event_log::open({.dir = log_dir(data.string()), .sync = !cluster});
  if (!log)
    return error{log.error().code, "cannot open the event log: " + log.error().message};
  i->local = std::move(*log);
  i->log = i->local.get();
  i->console = i->local.get();
  if (cluster) {
    auto shared = storage::jetstream_event_log::open(
      *i->local, {.servers = i->o.cluster, .name = "kiln-core-log", .replicas = i->o.log_replicas});
    if (!shared)
      return error{shared.error().code, "the cluster's log: " + shared.error().message};
    i->cluster_log = std::move(*shared);
    // What the stream holds before the core rebuilds its state from the copy.
    if (auto caught = i->cluster_log->catch_up(std::chrono::minutes{10}); !caught)
      return error{caught.error().code, "the cluster's log: " + caught.error().message};
    i->log = i->cluster_log.get();
    auto consoles = storage::jetstream_console_store::open(
      *i->local, {.servers = i->o.cluster,
                  .replicas = i->o.log_replicas,
                  .max_age = i->o.console_retention,
                  .position_file = data / "console.copied"});
    if (!consoles)
      return error{consoles.error().code, "the cluster's consoles: " + consoles.error().message};
    i->cluster_console = std::move(*consoles);
    i->console = i->cluster_console.get();
  }
  // Project secrets are sealed with this key; it never leaves the data dir
  // (but for the other cores of a cluster, which must all have it).
  if (cluster && i->log->last_seq().value > 0 && !std::filesystem::exists(data / "secret.key"))
    return error{"conflict", "the cluster's log has commits and " + (data / "secret.key").string()
                               + " is missing: copy secret.key and admin.token from another "
                                 "core's data dir"};
  auto box = storage::secret_box::load_or_create(data / "secret.key");
  if (!box)
    return box.error();
  i->box = std::make_unique<storage::secret_box>(std::move(*box));
  core::core_config config;
  config.console = i->console;
  // A single node: one CAF thread per CPU core; CAF's default (at least 4)
  // oversubscribes a small machine that also runs the HTTP threads and the
  // log's writer (GET of a build at 64 connections: ~18k -> ~22k req/s on
  // 2 cores). A cluster's core: one, beside its NATS and log threads; the
  // machine's other processes (servers, gateways) want the CPUs, and a
  // second CAF thread mostly woke the first.
  config.threads = cluster ? 1 : std::max(2u, std::thread::hardware_concurrency());
  // A worker silent for this long is offline and its runs are requeued.
  config.watchdog.worker_timeout = i->o.worker_timeout;
  config.watchdog_interval = std::min<std::chrono::milliseconds>(
    config.watchdog_interval,
    std::chrono::duration_cast<std::chrono::milliseconds>(config.watchdog.worker_timeout) / 3);
  // A cluster's cores run the process managers one at a time: the lease's holder.
  config.leading = !cluster;
  i->domain = std::make_unique<core::core>(*i->log, *i->box, config);
  if (auto started = i->domain->start(); !started)
    return error{started.error().code, "the core did not start: " + started.error().message};

  if (auto t = install_admin_token(*i->domain, data / "admin.token", cluster); !t)
    return error{t.error().code, "admin token: " + t.error().message};
  // A cluster's leading core also publishes the events.
  i->service = std::make_unique<core::core_service>(b, *i->domain, *i->log, !cluster);
  if (cluster) {
    auto lease = storage::jetstream_lease::start(
      {.servers = i->o.cluster, .holder = lease_holder(), .replicas = i->o.log_replicas},
      [domain = i->domain.get(), service = i->service.get()](bool leading) {
        domain->set_leading(leading);
        service->set_publishing(leading);
      });
    if (!lease)
      return error{lease.error().code, "the cluster's lease: " + lease.error().message};
    i->lease = std::move(*lease);
  }
  // On NATS the events also go into a JetStream stream, so that consumers
  // outside kiln can resume from where they were (docs/events.md).
  if (auto nats = dynamic_cast<bus::nats_bus*>(&b)) {
    std::string name{subjects::events_stream};
    if (auto kept = nats->keep_stream(name, "kiln.evt.>", i->o.event_retention); !kept)
      spdlog::warn("core events=no_stream message=\"{}\"", kept.error().message);
    else
      spdlog::info("core events=stream name={} subjects=kiln.evt.> max_age_h={}", name,
                   i->o.event_retention.count());
  }
  i->poller = std::make_unique<core::git_poller>(*i->domain,
                                                 core::git_poller_options{data / "git-cache"});
  return std::unique_ptr<core_node>{new core_node{std::move(i)}};
}

core_node::core_node(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

void core_node::start_helpers(const std::string& public_url) {
  auto& i = *impl_;
  auto notify = i.o.notify;
  if (notify.settings.public_url.empty())
    notify.settings.public_url = public_url;
  i.notifier = std::make_unique<core::notifier>(*i.domain, notify);
  auto store = i.o.store;
  if (!store)
    return;
  // Object stores also keep each finished run's console as one object.
  if (store->keeps_consoles())
    i.archiver = std::make_unique<core::console_archiver>(
      *i.domain,
      [store](const domain::run_key& run, const std::filesystem::path& file, const std::string& sha) {
        return store->put_console({run.project, run.build, run.name, ""}, file, sha);
      },
      i.o.data / "console-spool", std::chrono::seconds{2});
  // Retention deletes from the store the gateways write to.
  i.sweeper = std::make_unique<core::retention_sweeper>(
    *i.domain,
    [store](const domain::run_key& run, const std::string& path) {
      return store->remove({run.project, run.build, run.name, path});
    },
    i.o.retention_every);
}

core_node::~core_node() {
  auto& i = *impl_;
  i.poller.reset();
  i.sweeper.reset();
  i.archiver.reset();
  i.notifier.reset();
  i.lease.reset();  // given up first: another core takes over at once
  i.service.reset();
  i.domain->stop();
  i.cluster_console.reset();
  i.cluster_log.reset();
  i.local->close();
}

core::core& core_node::domain() { return *impl_->domain; }
std::filesystem::path core_node::admin_token_file() const { return impl_->o.data / "admin.token"; }
std::uint64_t core_node::last_seq() const { return impl_->log->last_seq().value; }

} // namespace kiln::cli
