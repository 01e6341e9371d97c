// `kiln up`: the single-node server: the event log, the domain core (actors,
// process managers, scheduler) and the HTTP front door. The /v1 API and the
// local workers land with issues 4 and 5 and are wired in here.
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "cli/version.hpp"
#include "actors/core.hpp"
#include "gateway/http_server.hpp"
#include "gateway/routes.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
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
  a.allow_only({"data", "listen", "workers", "executor", "public-read", "config"});
  auto data = a.get_or("data", "./kiln-data");
  auto listen = parse_listen(a.get_or("listen", "127.0.0.1:8080"));
  // Accepted so that scripts written against API.md keep working; they take
  // effect when the gateway and worker issues land.
  if (a.has("config") || a.has("executor") || a.get_u64("workers", 0) > 0 || a.has("public-read"))
    spdlog::warn("up options=ignored reason=\"--workers, --executor, --public-read and --config "
                 "take effect with issues 4 and 5\"");

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
  gateway::gateway_state state;
  // Project secrets are sealed with this key; it never leaves the data dir.
  auto box = storage::secret_box::load_or_create(std::filesystem::path{data} / "secret.key");
  if (!box) {
    std::fprintf(stderr, "kiln up: %s\n", box.error().message.c_str());
    return 1;
  }
  core::core domain{**log, *box};
  if (auto started = domain.start(); !started) {
    std::fprintf(stderr, "kiln up: the core did not start: %s\n", started.error().message.c_str());
    return 1;
  }
  auto server = gateway::http_server::start({.host = listen.host, .port = listen.port},
                                            gateway::make_router(state));
  if (!server) {
    std::fprintf(stderr, "kiln up: %s\n", server.error().message.c_str());
    return 1;
  }
  auto url = "http://" + listen.host + ":" + std::to_string((*server)->port());
  spdlog::info("up ready version={} url={} data={} last_seq={}", version, url, data,
               (*log)->last_seq().value);
  std::printf("kiln up: listening on %s (data in %s)\n"
              "kiln up: serving /healthz and /readyz only; the HTTP API arrives with issue 4\n",
              url.c_str(), data.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("up stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  state.draining = true;
  (*server)->stop();
  domain.stop();
  (*log)->close();
  spdlog::info("up stopped");
  return 0;
}

} // namespace kiln::cli
