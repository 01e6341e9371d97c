#include "actors/retention_sweeper.hpp"

#include "actors/core.hpp"
#include "actors/periodic.hpp"

#include <spdlog/spdlog.h>

namespace kiln::core {

struct retention_sweeper::impl {
  core& c;
  artifact_remover remove;
  std::unique_ptr<periodic> thread;

  void tick() {
    auto due = c.read(list_expired_artifacts{});
    if (!due)
      return;
    for (auto& e : std::get<std::vector<domain::expiring_run>>(*due)) {
      auto run = c.read(get_run{e.run});
      if (!run)
        continue;
      auto& artifacts = std::get<run_detail>(*run).state.artifacts;
      bool all = true;
      for (auto& a : artifacts)
        if (auto gone = remove(e.run, a.path); !gone) {
          spdlog::warn("retention run={} path=\"{}\" delete=failed error=\"{}\"", e.run.path(),
                       a.path, gone.error().message);
          all = false;
        }
      if (!all)
        continue;  // tried again next time
      if (auto done = c.call(expire_artifacts{e.run, e.reason}); !done)
        spdlog::warn("retention run={} record=failed error=\"{}\"", e.run.path(),
                     done.error().message);
      else
        spdlog::info("retention run={} artifacts={} expired=true reason=\"{}\"", e.run.path(),
                     artifacts.size(), e.reason);
    }
  }
};

retention_sweeper::retention_sweeper(core& c, artifact_remover remove,
                                     std::chrono::milliseconds interval)
    : impl_(std::make_unique<impl>(impl{c, std::move(remove), nullptr})) {
  impl_->thread = std::make_unique<periodic>(interval, [p = impl_.get()](const periodic&) { p->tick(); });
}

retention_sweeper::~retention_sweeper() = default;

} // namespace kiln::core
