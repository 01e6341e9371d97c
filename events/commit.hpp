#pragma once
// A commit is one or more events for one stream, appended atomically; a
// logged commit is a commit as the log holds it, at a global sequence and
// chained by hash to the commit before it.
#include "events/event.hpp"
#include "events/ids.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

using digest = std::array<std::uint8_t, 32>;  // SHA-256

std::string to_hex(const digest& d);
// Any bytes as lowercase hex.
std::string to_hex(std::string_view bytes);

// Who and why, carried by every commit.
struct commit_metadata {
  std::int64_t time_unix_ns = 0;
  std::string principal;       // token name, "worker:<name>", or "system"
  std::string command_id;      // idempotency key of the command that made it
  std::string correlation_id;  // ties a saga's commits to what started it
  bool operator==(const commit_metadata&) const = default;
};

struct commit {
  stream_id stream;
  stream_version first_version;  // version of events[0]
  commit_metadata meta;
  std::vector<event> events;

  stream_version last_version() const {
    return {first_version.value + events.size() - 1};
  }
  bool operator==(const commit&) const = default;
};

struct logged_commit {
  global_seq seq;
  digest prev_hash{};
  digest hash{};
  commit body;
};

} // namespace kiln
