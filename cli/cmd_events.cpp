// `kiln events --data DIR [--after SEQ] [--follow]`: the log as JSON lines.
// Safe on the data dir of a running server (read-only secondary open).
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "events/json.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace kiln::cli {

int cmd_events(int argc, char** argv) {
  args a{argc, argv, 2, {"follow"}};
  a.allow_only({"data", "after", "follow"});
  auto data = a.get("data");
  if (!data)
    throw usage_error("--data DIR is required");
  global_seq after{a.get_u64("after", 0)};

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (a.has("follow"))
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto log = open_log_for_tool(*data, "events");
  if (!log)
    return 2;
  if (!a.has("follow")) {
    for (;;) {
      auto page = log->read_all(after, 1024);
      if (!page) {
        std::fprintf(stderr, "kiln events: after seq %llu: %s\n",
                     static_cast<unsigned long long>(after.value), page.error().message.c_str());
        return 1;
      }
      if (page->empty())
        return 0;
      for (auto& c : *page)
        std::printf("%s\n", to_json_line(c).c_str());
      after = page->back().seq;
    }
  }
  int failed = 0;
  auto sub = log->subscribe(
    after,
    [](const logged_commit& c) {
      std::printf("%s\n", to_json_line(c).c_str());
      std::fflush(stdout);
      return true;
    },
    [&failed](const error& e) {
      std::fprintf(stderr, "kiln events: %s\n", e.message.c_str());
      failed = 1;
      kill(getpid(), SIGTERM);
    });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  sub.reset();
  return failed;
}

} // namespace kiln::cli
