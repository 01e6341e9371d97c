#pragma once
// Verifies the log's hash chain and its structure, one stored record at a
// time, in key order. Pure: it is fed bytes; where they come from is the
// caller's business (`kiln audit verify`, tests).
#include "events/commit.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::storage {

struct audit_report {
  std::uint64_t commits_checked = 0;
  std::uint64_t events_checked = 0;
  std::optional<global_seq> first_bad;  // empty: the chain is intact
  std::string reason;                   // why first_bad is bad
  digest head{};                        // hash of the last good commit
  bool intact() const { return !first_bad; }
};

class chain_verifier {
 public:
  // Feed records in key order. Returns false once a bad record was found
  // (further records are not looked at).
  bool feed(std::uint64_t key_seq, std::string_view record_bytes);

  // The scan itself failed after the last fed record (e.g. RocksDB corruption).
  void fail_after_last(std::string reason);

  const audit_report& report() const { return report_; }

 private:
  bool fail(std::uint64_t seq, std::string reason);

  audit_report report_;
  std::uint64_t last_seq_ = 0;
  digest last_hash_{};
  std::map<std::string, std::uint64_t, std::less<>> stream_versions_;
};

} // namespace kiln::storage
