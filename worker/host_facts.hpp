#pragma once
// What a worker tells the server about its machine when it registers.
#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::worker {

struct host_facts {
  unsigned cpus = 0;
  std::uint64_t memory_mb = 0;
  std::uint64_t free_disk_mb = 0;  // where the worker keeps its runs
  std::string kernel;
  std::string hostname;
};

host_facts read_host_facts(const std::filesystem::path& workdir);
std::string host_name();
std::uint64_t free_disk_mb(const std::filesystem::path& dir);

} // namespace kiln::worker
