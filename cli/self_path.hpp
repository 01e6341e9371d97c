#pragma once
// The running `kiln` binary: workers start `kiln exec-shim` and `kiln up`
// starts `kiln worker` with it.
#include <filesystem>
#include <system_error>

namespace kiln::cli {

inline std::filesystem::path self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : p;
}

} // namespace kiln::cli
