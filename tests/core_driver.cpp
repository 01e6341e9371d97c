// A real `kiln`-like process for the restart test: a core on DIR that
// triggers builds from several threads while one worker takes and passes
// runs. Prints "built N" for each acknowledged build, then is SIGKILLed.
#include "actors/core.hpp"
#include "sample_projects.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "storage/secret_box.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <thread>

using namespace kiln;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: core_driver DIR\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  std::filesystem::path dir = argv[1];
  auto log = storage::rocksdb_event_log::open({.dir = dir / "log"});
  auto box = storage::secret_box::load_or_create(dir / "secret.key");
  if (!log || !box)
    return 1;
  core::core node{**log, *box};
  if (!node.start())
    return 1;
  if (!node.call(core::put_project{"app", test::chained_project}))
    return 1;
  std::string token;
  if (auto t = node.call(core::register_worker{"w1", {"linux"}, 4, "{}"}, {"admin", "reg-w1"}))
    token = std::get<core::worker_token>(*t).token;
  node.call(core::enlist_worker{"w1"});
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (;;) {
        auto r = node.call(core::trigger_build{"app", "ci", {}, "", "", "driver", 0});
        if (!r)
          continue;
        std::lock_guard lock{out};
        std::printf("built %u\n", std::get<core::build_ref>(*r).build);
        std::fflush(stdout);
      }
    });
  threads.emplace_back([&] {
    for (;;) {
      auto r = node.call(core::worker_checkin{"w1", token});
      if (!r)
        continue;
      for (auto& h : std::get<core::checkin_reply>(*r).runs) {
        node.call(core::report_run{h.run, "w1", status::running, 0, ""});
        node.call(core::report_run{h.run, "w1", status::passed, 0, ""});
      }
    }
  });
  for (auto& t : threads)
    t.join();
}
