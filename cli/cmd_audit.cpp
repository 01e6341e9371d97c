// `kiln audit verify --data DIR`: walks the hash chain. Safe on the data dir
// of a running server (read-only secondary open).
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "storage/audit.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <cstdio>

namespace kiln::cli {

int cmd_audit(int argc, char** argv) {
  args a{argc, argv, 2};
  a.allow_only({"data"});
  if (a.positionals() != std::vector<std::string>{"verify"})
    throw usage_error("usage: kiln audit verify --data DIR");
  auto data = a.get("data");
  if (!data)
    throw usage_error("--data DIR is required");
  auto log = open_log_for_tool(*data, "audit");
  if (!log)
    return 2;
  storage::chain_verifier verifier;
  // Block checksums off: the hash chain judges every byte, and a bad byte is
  // then named by the commit that holds it rather than by its disk block.
  auto scanned = log->scan_records(global_seq{0}, false, [&](std::uint64_t seq, std::string_view bytes) {
    return verifier.feed(seq, bytes);
  });
  if (!scanned)
    verifier.fail_after_last(scanned.error().message);
  auto& r = verifier.report();
  if (!r.intact()) {
    std::printf("audit: BROKEN first_bad_seq=%llu reason=\"%s\" good_commits=%llu\n",
                static_cast<unsigned long long>(r.first_bad->value), r.reason.c_str(),
                static_cast<unsigned long long>(r.commits_checked));
    return 1;
  }
  std::printf("audit: intact commits=%llu events=%llu head=%s\n",
              static_cast<unsigned long long>(r.commits_checked),
              static_cast<unsigned long long>(r.events_checked), to_hex(r.head).c_str());
  return 0;
}

} // namespace kiln::cli
