#include "actors/console_archiver.hpp"

#include "actors/core.hpp"
#include "actors/periodic.hpp"
#include "events/sha256.hpp"

#include <spdlog/spdlog.h>

#include <fstream>

namespace kiln::core {

struct console_archiver::impl {
  core& c;
  console_putter put;
  std::filesystem::path spool;
  std::unique_ptr<periodic> thread;

  void tick() {
    auto due = c.read(list_unarchived_consoles{50});
    if (!due)
      return;
    for (auto& run : std::get<std::vector<domain::run_key>>(*due))
      archive(run);
  }

  void archive(const domain::run_key& run) {
    std::error_code ec;
    std::filesystem::create_directories(spool, ec);
    auto file = spool / "console.part";
    std::uint64_t size = 0;
    sha256 digest;
    bool whole = false;
    {
      std::ofstream out{file, std::ios::binary | std::ios::trunc};
      for (;;) {
        auto got = c.read(read_console{run, size, 1 << 20});
        if (!got)
          break;
        auto& text = std::get<console_text>(*got);
        out.write(text.data.data(), static_cast<std::streamsize>(text.data.size()));
        digest.update(text.data);
        size += text.data.size();
        if (text.data.empty() || size >= text.size) {
          whole = text.finished;
          break;
        }
      }
    }
    if (!whole)
      return;  // tried again next time
    auto sha = digest.hex();
    auto stored = put(run, file, sha);
    std::filesystem::remove(file, ec);
    if (!stored) {
      spdlog::warn("console run={} archive=failed error=\"{}\"", run.path(), stored.error().message);
      return;
    }
    if (auto done = c.call(archive_console{run, *stored, size, sha}); !done)
      spdlog::warn("console run={} record=failed error=\"{}\"", run.path(), done.error().message);
    else
      spdlog::info("console run={} archived=\"{}\" bytes={}", run.path(), *stored, size);
  }
};

console_archiver::console_archiver(core& c, console_putter put, std::filesystem::path spool,
                                   std::chrono::milliseconds interval)
    : impl_(std::make_unique<impl>(impl{c, std::move(put), std::move(spool), nullptr})) {
  impl_->thread = std::make_unique<periodic>(interval, [p = impl_.get()](const periodic&) { p->tick(); });
}

console_archiver::~console_archiver() = default;

} // namespace kiln::core
