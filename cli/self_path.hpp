#pragma once
// The running `kiln` binary (`kiln up` starts `kiln worker` with it) and
// the programs installed beside it.
#include <filesystem>
#include <system_error>

namespace kiln::cli {

inline std::filesystem::path self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : p;
}

// The host executor's reaper, installed beside kiln.
inline std::filesystem::path shim_path() { return self_path().parent_path() / "kiln-exec-shim"; }

} // namespace kiln::cli
