#pragma once
// Where a data dir keeps its parts, and opening its log for the operator
// tools (read-only, safe beside a running server).
#include "storage/rocksdb_event_log.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace kiln::cli {

inline std::filesystem::path log_dir(const std::string& data) {
  return std::filesystem::path{data} / "log";
}

// The log of `data`, opened read-only; null after printing why to stderr
// (prefixed with `tool`).
std::unique_ptr<storage::rocksdb_event_log> open_log_for_tool(const std::string& data,
                                                              const char* tool);

} // namespace kiln::cli
