// `kiln`: one binary, many subcommands (API.md "Command line").
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/version.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

void usage(std::FILE* out) {
  std::fputs(
    "usage: kiln <command> [options]\n"
    "  up [--data DIR] [--listen HOST:PORT]   single node (core + gateway)\n"
    "  core --nats URL[,URL] --data DIR       a core alone, answering gateways over NATS\n"
    "  gateway --nats URL[,URL] --listen HOST:PORT   a gateway alone (stateless)\n"
    "  balance --nats URL[,URL] [--json]      the cluster's streams led by different servers\n"
    "  audit verify --data DIR                verify the event log's hash chain\n"
    "  events --data DIR [--after SEQ] [--follow]  print events as JSON lines\n"
    "  replay --data DIR [--at RFC3339|SEQ] [--project P]  state as of a moment, as JSON\n"
    "  token create --scope read|trigger|admin [--project P] [--label L]\n"
    "  token list | token revoke ID           API tokens, over HTTP:\n"
    "      [--server URL] [--token-file F] (or KILN_TOKEN)\n"
    "  worker --server URL[,URL] --name N [--tags a,b] [--concurrency N]\n"
    "         [--workdir DIR] [--executor bwrap|host|podman]   a worker\n"
    "  simulate RUNDEF.json [-w DIR]          one run locally, as a worker would\n"
    "  bench log|core|gateway|e2e|objectstore|cluster [--json]   benchmarks (docs/performance.md)\n"
    "  --version\n",
    out);
}

} // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("kiln");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (const char* lvl = std::getenv("KILN_LOG"))
    spdlog::set_level(spdlog::level::from_str(lvl));

  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  try {
    if (cmd == "--version" || cmd == "version") {
      std::printf("kiln %s\n", kiln::cli::version);
      return 0;
    }
    if (cmd == "--help" || cmd == "help" || cmd == "-h") {
      usage(stdout);
      return 0;
    }
    if (cmd == "up")
      return kiln::cli::cmd_up(argc, argv);
    if (cmd == "audit")
      return kiln::cli::cmd_audit(argc, argv);
    if (cmd == "events")
      return kiln::cli::cmd_events(argc, argv);
    if (cmd == "bench")
      return kiln::cli::cmd_bench(argc, argv);
    if (cmd == "replay")
      return kiln::cli::cmd_replay(argc, argv);
    if (cmd == "token")
      return kiln::cli::cmd_token(argc, argv);
    if (cmd == "core")
      return kiln::cli::cmd_core(argc, argv);
    if (cmd == "gateway")
      return kiln::cli::cmd_gateway(argc, argv);
    if (cmd == "worker")
      return kiln::cli::cmd_worker(argc, argv);
    if (cmd == "simulate")
      return kiln::cli::cmd_simulate(argc, argv);
    if (cmd == "balance")
      return kiln::cli::cmd_balance(argc, argv);
  } catch (const kiln::cli::usage_error& e) {
    std::fprintf(stderr, "kiln %.*s: %s\n", static_cast<int>(cmd.size()), cmd.data(), e.what());
    return 2;
  }
  std::fprintf(stderr, "kiln: unknown command '%.*s'\n", static_cast<int>(cmd.size()), cmd.data());
  usage(stderr);
  return 2;
}
