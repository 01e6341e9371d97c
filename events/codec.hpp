#pragma once
// Value types <-> schema bytes. Every byte string that comes from disk or the
// network passes the FlatBuffers verifier before anything reads it: garbage
// or a truncated buffer is an error value, never a crash. The verifier only
// guarantees memory safety; the log's hash chain guarantees integrity.
#include "events/commit.hpp"
#include "events/result.hpp"

#include <string>
#include <string_view>

namespace kiln::codec {

enum class errc {
  malformed,           // failed verification or misses a required part
  unknown_event_type,  // written by a newer kiln, or corrupt
};
std::string_view to_string(errc e);

// The commit's bytes; equal commits encode to equal bytes.
std::string encode_commit(const commit& c);
result<commit> decode_commit(std::string_view bytes);

// A stored record, its commit left as bytes (views into the decoded buffer,
// which must outlive it).
struct record_view {
  global_seq seq;
  digest prev_hash{};
  digest hash{};
  std::string_view commit_bytes;
};

std::string encode_record(global_seq seq, const digest& prev_hash,
                          const digest& hash, std::string_view commit_bytes);
// Verifies the record and the commit nested in it. `bytes` must start on an
// 8-byte boundary (a std::string's buffer does); otherwise: malformed.
result<record_view> decode_record(std::string_view bytes);
// decode_record + decode_commit in one go.
result<logged_commit> decode_logged_commit(std::string_view record_bytes);

} // namespace kiln::codec
