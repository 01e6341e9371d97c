#include "worker/host_facts.hpp"

#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <thread>

namespace kiln::worker {

std::uint64_t free_disk_mb(const std::filesystem::path& dir) {
  struct statvfs s{};
  if (::statvfs(dir.c_str(), &s) != 0)
    return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize / (1024 * 1024);
}

host_facts read_host_facts(const std::filesystem::path& workdir) {
  host_facts f;
  f.cpus = std::thread::hardware_concurrency();
  struct sysinfo si{};
  if (::sysinfo(&si) == 0)
    f.memory_mb = static_cast<std::uint64_t>(si.totalram) * si.mem_unit / (1024 * 1024);
  f.free_disk_mb = free_disk_mb(workdir);
  struct utsname u{};
  if (::uname(&u) == 0)
    f.kernel = std::string{u.sysname} + " " + u.release + " " + u.machine;
  f.hostname = host_name();
  return f;
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

} // namespace kiln::worker
