// `kiln bench <what> [--json]`: picks the benchmark; a failure inside one is
// reported and exits 1, a bad command line exits 2.
#include "cli/args.hpp"
#include "cli/benches.hpp"
#include "cli/commands.hpp"

#include <cstdio>
#include <map>

namespace kiln::cli {

int cmd_bench(int argc, char** argv) {
  args a{argc, argv, 2, {"json"}};
  if (a.has("startup-only"))
    return bench_core_startup_only(*a.get("startup-only"));
  static const std::map<std::string, int (*)(const args&)> benches{
    {"log", bench_log},   {"core", bench_core},           {"gateway", bench_gateway},
    {"e2e", bench_e2e},   {"objectstore", bench_objectstore}, {"cluster", bench_cluster}};
  if (a.positionals().size() != 1)
    throw usage_error("usage: kiln bench <what> [--json]; what: log, core, gateway, e2e, objectstore, cluster");
  auto what = a.positionals()[0];
  if (auto it = benches.find(what); it != benches.end()) {
    try {
      return it->second(a);
    } catch (const usage_error&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln bench %s: %s\n", what.c_str(), e.what());
      return 1;
    }
  }
  throw usage_error("unknown benchmark '" + what + "'; known: log, core, gateway, e2e, objectstore, cluster");
}

} // namespace kiln::cli
