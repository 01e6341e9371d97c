#pragma once
// The tamper-evident chain: each commit's hash covers its sequence, its bytes
// and the hash of the commit before it, so changing any stored commit breaks
// every link after it.
#include "events/commit.hpp"

#include <string_view>

namespace kiln::storage {

// The `prev_hash` of the first commit.
inline constexpr digest genesis_hash{};

// SHA-256(prev || big-endian u64 seq || commit_bytes).
digest chain_hash(const digest& prev, global_seq seq, std::string_view commit_bytes);

} // namespace kiln::storage
