#include "cli/data_dir.hpp"

#include <cstdio>

namespace kiln::cli {

std::unique_ptr<storage::rocksdb_event_log> open_log_for_tool(const std::string& data,
                                                              const char* tool) {
  auto log = storage::rocksdb_event_log::open({.dir = log_dir(data), .read_only = true});
  if (!log) {
    std::fprintf(stderr, "kiln %s: cannot open the event log: %s\n", tool,
                 log.error().message.c_str());
    return nullptr;
  }
  return std::move(*log);
}

} // namespace kiln::cli
