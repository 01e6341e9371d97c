// `kiln up`: the single-node server: the event log, the domain core (actors,
// process managers, scheduler), the in-process bus and the gateway (the
// HTTP API), and N local workers as child processes.
#include "cli/args.hpp"
#include "cli/artifact_args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "cli/version.hpp"
#include "actors/core.hpp"
#include "actors/git_poller.hpp"
#include "actors/console_archiver.hpp"
#include "actors/notifier.hpp"
#include "actors/retention_sweeper.hpp"
#include "gateway/http_server.hpp"
#include "gateway/artifact_store.hpp"
#include "gateway/gateway.hpp"
#include "actors/core_service.hpp"
#include "cli/admin_token.hpp"
#include "cli/local_workers.hpp"
#include "events/in_process_bus.hpp"
#include "events/nats_bus.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <pthread.h>

namespace kiln::cli {

namespace {

struct listen_address {
  std::string host;
  std::uint16_t port;
};

listen_address parse_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw usage_error("--listen wants HOST:PORT, not '" + s + "'");
  auto host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    auto port = std::stoul(s.substr(colon + 1));
    if (port > 65535)
      throw std::out_of_range(s);
    return {host, static_cast<std::uint16_t>(port)};
  } catch (const std::exception&) {
    throw usage_error("--listen wants HOST:PORT, not '" + s + "'");
  }
}

// Where notifications go (docs/operations.md). The SMTP password comes
// from the environment, never from the command line (ps would show it).
// Without --public-url, links name the address the node listens on.
core::notifier_options notifier_options(const args& a) {
  core::notifier_options o;
  auto& s = o.settings;
  s.public_url = a.get_or("public-url", "");
  while (s.public_url.ends_with('/'))
    s.public_url.pop_back();
  s.github_api = a.get_or("github-api", s.github_api);
  s.gitlab_api = a.get_or("gitlab-api", s.gitlab_api);
  s.mail_from = a.get_or("smtp-from", s.mail_from);
  o.smtp_url = a.get_or("smtp", "");
  if (!o.smtp_url.empty() && !o.smtp_url.starts_with("smtp://") && !o.smtp_url.starts_with("smtps://"))
    throw usage_error("--smtp wants smtp://HOST:PORT or smtps://HOST:PORT, not '" + o.smtp_url + "'");
  o.smtp_user = a.get_or("smtp-user", "");
  if (auto pw = std::getenv("KILN_SMTP_PASSWORD"))
    o.smtp_password = pw;
  if (auto retry = a.get("notify-retry")) {
    double seconds = 0;
    try {
      seconds = std::stod(*retry);
    } catch (const std::exception&) {
      seconds = -1;
    }
    if (!(seconds > 0))
      throw usage_error("--notify-retry wants seconds (more than 0), not '" + *retry + "'");
    o.retry.first_delay_ms = static_cast<std::int64_t>(seconds * 1000);
    o.tick = std::min<std::chrono::milliseconds>(
      o.tick, std::chrono::milliseconds{std::max<std::int64_t>(50, o.retry.first_delay_ms / 2)});
  }
  return o;
}

} // namespace

int cmd_up(int argc, char** argv) {
  args a{argc, argv, 2, {"public-read"}};
  auto known = artifact_options;
  known.insert({"data", "listen", "workers", "executor", "public-read", "config", "max-streams",
                "worker-timeout", "public-url", "smtp", "smtp-from", "smtp-user", "github-api",
                "gitlab-api", "notify-retry", "retention-interval", "nats"});
  a.allow_only(known);
  auto data = a.get_or("data", "./kiln-data");
  auto listen = parse_listen(a.get_or("listen", "127.0.0.1:8080"));
  if (a.has("config"))
    throw usage_error("--config is not built yet; use the options (kiln up --help lists them)");
  auto worker_count = a.get_u64("workers", 1);
  auto executor = a.get_or("executor", "");
  if (!executor.empty() && executor != "bwrap" && executor != "host" && executor != "podman")
    throw usage_error("--executor is bwrap, host or podman, not '" + executor + "'");
  auto notify = notifier_options(a);
  auto retention_every = std::chrono::seconds{a.get_u64("retention-interval", 600)};
  if (retention_every.count() < 1)
    throw usage_error("--retention-interval is at least 1 second");
  gateway::gateway_options gopts;
  if (auto store = configure_artifacts(a, data, gopts); !store) {
    std::fprintf(stderr, "kiln up: %s\n", store.error().message.c_str());
    return 1;
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto log = storage::rocksdb_event_log::open({.dir = log_dir(data)});
  if (!log) {
    std::fprintf(stderr, "kiln up: cannot open the event log: %s\n", log.error().message.c_str());
    return 1;
  }
  // Project secrets are sealed with this key; it never leaves the data dir.
  auto box = storage::secret_box::load_or_create(std::filesystem::path{data} / "secret.key");
  if (!box) {
    std::fprintf(stderr, "kiln up: %s\n", box.error().message.c_str());
    return 1;
  }
  // The in-process bus, or NATS (--nats URL[,URL…]): then the gateway
  // reaches the core over NATS, and outside subscribers get every event.
  // Declared first, destroyed last: the core service and the gateway hold
  // subscriptions on it.
  std::unique_ptr<bus::bus> bus_owner;
  if (auto nats = a.get_list("nats"); !nats.empty()) {
    auto connected = bus::nats_bus::connect({nats, "kiln-up"});
    if (!connected) {
      std::fprintf(stderr, "kiln up: --nats: %s\n", connected.error().message.c_str());
      return 1;
    }
    bus_owner = std::move(*connected);
  } else {
    bus_owner = std::make_unique<bus::in_process_bus>();
  }
  auto& bus = *bus_owner;
  core::core_config config;
  config.console = log->get();
  // One CAF thread per core: CAF's default (at least 4) oversubscribes a
  // small machine that also runs the HTTP threads and the log's writer
  // (GET of a build at 64 connections: ~18k -> ~22k req/s on 2 cores).
  config.threads = std::max(2u, std::thread::hardware_concurrency());
  // A worker silent for this long is offline and its runs are requeued.
  config.watchdog.worker_timeout = std::chrono::seconds{a.get_u64("worker-timeout", 90)};
  if (config.watchdog.worker_timeout < std::chrono::seconds{2})
    throw usage_error("--worker-timeout is at least 2 seconds");
  config.watchdog_interval = std::min<std::chrono::milliseconds>(
    config.watchdog_interval,
    std::chrono::duration_cast<std::chrono::milliseconds>(config.watchdog.worker_timeout) / 3);
  core::core domain{**log, *box, config};
  if (auto started = domain.start(); !started) {
    std::fprintf(stderr, "kiln up: the core did not start: %s\n", started.error().message.c_str());
    return 1;
  }
  auto token_file = std::filesystem::path{data} / "admin.token";
  if (auto t = install_admin_token(domain, token_file); !t) {
    std::fprintf(stderr, "kiln up: admin token: %s\n", t.error().message.c_str());
    return 1;
  }
  auto service = std::make_unique<core::core_service>(bus, domain, **log);
  auto poller = std::make_unique<core::git_poller>(
    domain, core::git_poller_options{std::filesystem::path{data} / "git-cache"});
  gopts.public_read = a.has("public-read");
  gopts.max_streams = a.get_u64("max-streams", gopts.max_streams);
  gateway::gateway front{bus, gopts};
  auto server = gateway::http_server::start(
    {.host = listen.host, .port = listen.port, .threads = 2},
    [&front](gateway::http_request req, gateway::responder respond) {
      front.handle(std::move(req), std::move(respond));
    },
    [&front](std::string_view method, std::string_view target) {
      return front.plan(method, target);
    });
  if (!server) {
    std::fprintf(stderr, "kiln up: %s\n", server.error().message.c_str());
    return 1;
  }
  auto url = "http://" + listen.host + ":" + std::to_string((*server)->port());
  spdlog::info("up ready version={} url={} data={} last_seq={} public_read={}", version, url, data,
               (*log)->last_seq().value, gopts.public_read);
  std::printf("kiln up: listening on %s (data in %s)\n"
              "kiln up: admin token in %s\n",
              url.c_str(), data.c_str(), token_file.c_str());
  std::fflush(stdout);

  if (notify.settings.public_url.empty())
    notify.settings.public_url = url;
  auto notifier = std::make_unique<core::notifier>(domain, notify);
  // Object stores also keep each finished run's console as one object.
  std::unique_ptr<core::console_archiver> archiver;
  if (gopts.store->keeps_consoles())
    archiver = std::make_unique<core::console_archiver>(
      domain,
      [store = gopts.store](const domain::run_key& run, const std::filesystem::path& file,
                            const std::string& sha) {
        return store->put_console({run.project, run.build, run.name, ""}, file, sha);
      },
      std::filesystem::path{data} / "console-spool", std::chrono::seconds{2});
  // Retention deletes from the store the gateway writes to.
  auto sweeper = std::make_unique<core::retention_sweeper>(
    domain,
    [store = gopts.store](const domain::run_key& run, const std::string& path) {
      return store->remove({run.project, run.build, run.name, path});
    },
    retention_every);

  std::unique_ptr<local_workers> workers;
  if (worker_count > 0) {
    auto w = local_workers::start(domain, {static_cast<unsigned>(worker_count), url, data, executor});
    if (!w)
      spdlog::error("up workers=failed message=\"{}\"", w.error().message);
    else
      workers = std::move(*w);
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("up stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Local workers first, while the gateway still takes their reports.
  if (workers)
    workers->stop(std::chrono::seconds{10});
  // Drain: not ready at once, no new connections, long polls and streams
  // told to reconnect, in-flight requests finished; then the core.
  front.drain();
  (*server)->stop_accepting();
  (*server)->stop(std::chrono::seconds{10});
  poller.reset();
  sweeper.reset();
  archiver.reset();
  notifier.reset();
  service.reset();
  domain.stop();
  (*log)->close();
  spdlog::info("up stopped");
  return 0;
}

} // namespace kiln::cli
