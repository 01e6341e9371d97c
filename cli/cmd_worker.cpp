// `kiln worker` (API.md): a worker process. SIGTERM drains (no new runs,
// running ones finish and are reported); a second SIGTERM kills the runs
// and reports them; a third exits at once.
#include "cli/args.hpp"
#include "cli/config_file.hpp"
#include "cli/commands.hpp"
#include "cli/self_path.hpp"
#include "cli/version.hpp"
#include "worker/host_facts.hpp"
#include "worker/worker.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace kiln::cli {

int cmd_worker(int argc, char** argv) {
  args a{argc, argv, 2};
  std::set<std::string> known{"server", "name", "tags", "concurrency", "workdir", "executor",
                              "ca-file", "min-free-disk-mb", "poll-wait", "shared-volumes",
                              "artifact-retry-for", "config"};
  a.allow_only(known);
  load_config_file(a, known);
  worker::worker_options o;
  o.servers = a.get_list("server", "http://127.0.0.1:8080");
  o.name = a.get_or("name", worker::host_name());
  o.tags = a.get_list("tags");
  o.concurrency = static_cast<unsigned>(a.get_u64("concurrency", 1));
  o.workdir = a.get_or("workdir", "./kiln-worker");
  o.executor = a.get_or("executor", "");
  o.ca_file = a.get_or("ca-file", "");
  o.min_free_disk_mb = a.get_u64("min-free-disk-mb", o.min_free_disk_mb);
  o.poll_wait_s = static_cast<unsigned>(a.get_u64("poll-wait", o.poll_wait_s));
  o.artifact_retry_s = static_cast<unsigned>(a.get_u64("artifact-retry-for", o.artifact_retry_s));
  o.shim_program = shim_path();
  for (auto& item : a.get_list("shared-volumes")) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw usage_error("--shared-volumes wants NAME=PATH[,NAME=PATH], not '" + item + "'");
    o.shared_volumes[item.substr(0, eq)] = item.substr(eq + 1);
  }
  o.version = version;
  if (!o.executor.empty() && o.executor != "bwrap" && o.executor != "host"
      && o.executor != "podman" && o.executor != "docker")
    throw usage_error("--executor is bwrap, host, podman or docker, not '" + o.executor + "'");

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto w = worker::worker::make(o);
  if (!w) {
    std::fprintf(stderr, "kiln worker: %s\n", w.error().message.c_str());
    return 1;
  }
  std::thread signals{[&] {
    for (int n = 1;; ++n) {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      if (sig == 0)
        return;
      if (n == 1) {
        (*w)->drain();
      } else if (n == 2) {
        spdlog::warn("worker stopping=now reason=\"second signal: killing runs\"");
        (*w)->kill_runs();
      } else {
        std::_Exit(1);
      }
    }
  }};
  signals.detach();
  return (*w)->run();
}

} // namespace kiln::cli
