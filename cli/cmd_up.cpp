// `kiln up`: the single-node server: the event log, the domain core (actors,
// process managers, scheduler), the in-process bus and the gateway (the
// HTTP API). Local workers land with issue 5 and are wired in here.
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "cli/version.hpp"
#include "actors/core.hpp"
#include "gateway/http_server.hpp"
#include "gateway/gateway.hpp"
#include "actors/core_service.hpp"
#include "cli/admin_token.hpp"
#include "events/in_process_bus.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <algorithm>
#include <cstdio>
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

} // namespace

int cmd_up(int argc, char** argv) {
  args a{argc, argv, 2, {"public-read"}};
  a.allow_only({"data", "listen", "workers", "executor", "public-read", "config", "max-streams"});
  auto data = a.get_or("data", "./kiln-data");
  auto listen = parse_listen(a.get_or("listen", "127.0.0.1:8080"));
  // Accepted so that scripts written against API.md keep working; they take
  // effect when the worker issue (5) lands.
  if (a.has("config") || a.has("executor") || a.get_u64("workers", 0) > 0)
    spdlog::warn("up options=ignored reason=\"--workers, --executor and --config take effect "
                 "with issue 5 (the worker); no local worker runs\"");

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
  // Declared first, destroyed last: the core service and the gateway hold
  // subscriptions on it.
  bus::in_process_bus bus;
  core::core_config config;
  config.console = log->get();
  // One CAF thread per core: CAF's default (at least 4) oversubscribes a
  // small machine that also runs the HTTP threads and the log's writer
  // (GET of a build at 64 connections: ~18k -> ~22k req/s on 2 cores).
  config.threads = std::max(2u, std::thread::hardware_concurrency());
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
  gateway::gateway_options gopts;
  gopts.public_read = a.has("public-read");
  gopts.max_streams = a.get_u64("max-streams", gopts.max_streams);
  gopts.artifacts = std::filesystem::path{data} / "artifacts";
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

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("up stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Drain: not ready at once, no new connections, long polls and streams
  // told to reconnect, in-flight requests finished; then the core.
  front.drain();
  (*server)->stop_accepting();
  (*server)->stop(std::chrono::seconds{10});
  service.reset();
  domain.stop();
  (*log)->close();
  spdlog::info("up stopped");
  return 0;
}

} // namespace kiln::cli
