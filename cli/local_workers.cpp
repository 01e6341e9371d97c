#include "cli/local_workers.hpp"

#include "actors/core.hpp"
#include "cli/self_path.hpp"
#include "cli/subprocess.hpp"
#include "worker/host_facts.hpp"
#include "worker/worker.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <thread>

namespace kiln::cli {

namespace fs = std::filesystem;

struct local_workers::impl {
  std::vector<std::unique_ptr<subprocess>> procs;
};

namespace {

// Registered once (the token stays in the workdir across restarts), and
// enlisted every time (a no-op when it already is).
status_result prepare(core::core& domain, const std::string& name, const fs::path& workdir) {
  core::request_context system{"system", ""};
  std::error_code ec;
  fs::create_directories(workdir, ec);
  auto file = worker::token_file(workdir);
  if (!fs::exists(file)) {
    // A worker of that name whose token was lost: make it anew.
    domain.call(core::delete_worker{name}, system);
    auto r = domain.call(core::register_worker{name, {worker::host_name()}, 1,
                                                nlohmann::json{{"local", true}}.dump()},
                         system);
    if (!r)
      return r.error();
    auto t = std::get_if<core::worker_token>(&*r);
    if (!t)
      return error{"bad_reply", "registering a local worker gave no token"};
    if (auto w = worker::save_token(workdir, t->token); !w)
      return w;
  }
  auto e = domain.call(core::enlist_worker{name}, system);
  if (!e)
    return e.error();
  return kiln::ok;
}

} // namespace

result<std::unique_ptr<local_workers>> local_workers::start(core::core& domain,
                                                            const local_worker_options& o) {
  auto p = std::make_unique<impl>();
  for (unsigned i = 1; i <= o.count; ++i) {
    auto name = "local-" + std::to_string(i);
    auto workdir = o.data / "workers" / name;
    if (auto r = prepare(domain, name, workdir); !r)
      return error{r.error().code, "local worker " + name + ": " + r.error().message};
    std::vector<std::string> argv{self_path().string(), "worker", "--server", o.url,
                                  "--name", name, "--workdir", workdir.string()};
    if (!o.executor.empty())
      argv.insert(argv.end(), {"--executor", o.executor});
    if (!o.artifact_retry_for.empty())
      argv.insert(argv.end(), {"--artifact-retry-for", o.artifact_retry_for});
    try {
      p->procs.push_back(std::make_unique<subprocess>(argv, fs::path{}, true));
    } catch (const std::exception& e) {
      return error{"spawn", std::string{"cannot start a local worker: "} + e.what()};
    }
    spdlog::info("up worker=started name={} pid={} workdir={}", name, p->procs.back()->pid(),
                 workdir.string());
  }
  return std::unique_ptr<local_workers>{new local_workers{std::move(p)}};
}

local_workers::local_workers(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
local_workers::~local_workers() = default;

void local_workers::stop(std::chrono::seconds grace) {
  auto all_exited = [&](std::chrono::steady_clock::time_point until) {
    for (;;) {
      bool running = false;
      for (auto& w : impl_->procs)
        if (!w->try_wait())
          running = true;
      if (!running || std::chrono::steady_clock::now() >= until)
        return !running;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  };
  for (auto& w : impl_->procs)
    w->signal(SIGTERM);
  if (all_exited(std::chrono::steady_clock::now() + grace))
    return;
  spdlog::warn("up workers=slow action=\"second SIGTERM: runs are killed and reported\"");
  for (auto& w : impl_->procs)
    w->signal(SIGTERM);
  all_exited(std::chrono::steady_clock::now() + std::chrono::seconds{5});
  impl_->procs.clear();  // SIGKILLs and reaps whatever is left
}

} // namespace kiln::cli
