// `kiln simulate RUNDEF.json [-w DIR]`: one run exactly as a worker runs it
// (same run_job), with no server: the console on stdout, artifacts left in
// DIR/archive, test results printed at the end.
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/self_path.hpp"
#include "worker/executor.hpp"
#include "worker/run_job.hpp"

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <unistd.h>

namespace kiln::cli {

namespace {

class stdout_console final : public worker::console_sink {
 public:
  void write(std::string_view bytes) override {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    std::fflush(stdout);
  }
};

// Only an empty folder, or one a previous simulate left, is used: the
// run's own folders in it are replaced.
constexpr const char* marker = ".kiln-simulate";

} // namespace

int cmd_simulate(int argc, char** argv) {
  // `-w DIR` is API.md's spelling; `--workdir DIR` works too.
  std::vector<char*> rewritten(argv, argv + argc);
  std::string workdir_flag = "--workdir";
  for (auto& arg : rewritten)
    if (std::string_view{arg} == "-w")
      arg = workdir_flag.data();
  args a{argc, rewritten.data(), 2};
  a.allow_only({"workdir", "executor", "server"});
  if (a.positionals().size() != 1)
    throw usage_error("usage: kiln simulate RUNDEF.json [-w DIR] [--executor bwrap|host]");
  std::ifstream in{a.positionals()[0]};
  if (!in)
    throw usage_error("cannot read " + a.positionals()[0]);
  std::stringstream text;
  text << in.rdbuf();
  auto def = worker::parse_run_definition(text.str());
  if (!def) {
    std::fprintf(stderr, "kiln simulate: %s\n", def.error().message.c_str());
    return 2;
  }

  namespace fs = std::filesystem;
  fs::path dir;
  if (auto w = a.get("workdir")) {
    dir = fs::absolute(*w);
    std::error_code ec;
    if (fs::exists(dir) && !fs::is_empty(dir, ec) && !fs::exists(dir / marker)) {
      std::fprintf(stderr, "kiln simulate: %s is not empty; give an empty or new folder\n",
                   dir.c_str());
      return 2;
    }
  } else {
    // A new folder of our own: create_directory fails on one that exists.
    std::random_device rd;
    for (int tries = 0; dir.empty() && tries < 100; ++tries) {
      auto candidate = fs::temp_directory_path()
                       / ("kiln-simulate-" + std::to_string(::getpid()) + "-"
                          + std::to_string(rd() % 1000000));
      std::error_code ec;
      if (fs::create_directory(candidate, ec))
        dir = candidate;
    }
    if (dir.empty()) {
      std::fprintf(stderr, "kiln simulate: cannot create a folder in %s\n",
                   fs::temp_directory_path().c_str());
      return 1;
    }
  }
  fs::create_directories(dir);
  std::ofstream{dir / marker};

  worker::executor_options eo{shim_path()};
  auto kind = a.get_or("executor", worker::default_executor_kind());
  auto exec = worker::make_executor(kind, eo);
  if (!exec) {
    std::fprintf(stderr, "kiln simulate: %s\n", exec.error().message.c_str());
    return 1;
  }
  std::unique_ptr<worker::executor> containers;
  if (auto engine = worker::probe_container_engine(); !engine.empty())
    if (auto c = worker::make_executor(engine, eo))
      containers = std::move(*c);

  worker::run_settings s;
  s.root = dir;
  s.exec = exec->get();
  s.containers = containers.get();
  s.worker_name = "simulate";
  s.server_url = a.get_or("server", "");
  s.volumes = dir / "volumes";
  stdout_console console;
  auto out = worker::execute_run(*def, s, console);

  std::fprintf(stderr, "kiln simulate: %s (exit code %d)%s%s\n", out.status.c_str(),
               out.exit_code, out.message.empty() ? "" : ": ", out.message.c_str());
  std::fprintf(stderr, "kiln simulate: %zu artifact(s) in %s\n", out.artifacts.size(),
               (dir / "archive").c_str());
  for (auto& suite : out.tests) {
    std::fprintf(stderr, "kiln simulate: tests %s\n", suite.name.c_str());
    for (auto& t : suite.results)
      std::fprintf(stderr, "  %-8s %s%s%s\n", t.status.c_str(), t.name.c_str(),
                   t.message.empty() ? "" : ": ", t.message.c_str());
  }
  return out.status == "PASSED" ? 0 : 1;
}

} // namespace kiln::cli
