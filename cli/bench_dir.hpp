#pragma once
// The directory a benchmark works in: `--dir` or a fresh one named after the
// benchmark and the process; it must not exist, and it is removed at the end.
#include "cli/args.hpp"

#include <filesystem>
#include <string>
#include <unistd.h>

namespace kiln::cli {

class bench_dir {
 public:
  bench_dir(const args& a, const std::string& name)
      : path_{a.get_or("dir", "kiln-bench-" + name + "-" + std::to_string(getpid()))} {
    if (std::filesystem::exists(path_))
      throw usage_error(path_.string() + " exists; give an unused --dir");
    std::filesystem::create_directories(path_);
  }
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

} // namespace kiln::cli
