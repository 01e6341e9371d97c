#pragma once
// What `kiln audit verify` says of a core's data dir (read beside the running
// core): "audit: intact commits=N events=M head=H", or how it failed.
#include "support/process.hpp"

#include <filesystem>
#include <string>

namespace kiln::test {

inline std::string audit_line(const std::string& kiln, const std::filesystem::path& data) {
  auto [status, out] = run({kiln, "audit", "verify", "--data", data.string()});
  auto at = out.find("audit: ");
  return status == 0 && at != std::string::npos ? out.substr(at)
                                                 : "exit " + std::to_string(status) + ": " + out;
}

} // namespace kiln::test
