#pragma once
// The console archiver, beside a core whose artifact store keeps objects
// (S3): every interval it takes a batch of finished runs whose console is
// not archived, reads each console from the log, stores it as one object
// next to the run's artifacts and records RunConsoleArchived. Stored
// first, then recorded: a crash in between stores it again.
#include "actors/read_model.hpp"
#include "events/result.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace kiln::core {

class core;

// Stores the console (a file, with its SHA-256); the object's name.
using console_putter = std::function<result<std::string>(
  const domain::run_key& run, const std::filesystem::path& file, const std::string& sha256)>;

class console_archiver {
 public:
  console_archiver(core& c, console_putter put, std::filesystem::path spool,
                   std::chrono::milliseconds interval);
  ~console_archiver();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
