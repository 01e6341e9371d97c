#include "storage/audit.hpp"

#include "events/codec.hpp"
#include "storage/hash_chain.hpp"

#include <string>

namespace kiln::storage {

bool chain_verifier::fail(std::uint64_t seq, std::string reason) {
  report_.first_bad = global_seq{seq};
  report_.reason = std::move(reason);
  return false;
}

void chain_verifier::fail_after_last(std::string reason) {
  if (report_.intact())
    fail(last_seq_ + 1, std::move(reason));
}

bool chain_verifier::feed(std::uint64_t key_seq, std::string_view record_bytes) {
  if (!report_.intact())
    return false;
  if (key_seq != last_seq_ + 1)
    return fail(last_seq_ + 1, "missing: the next stored sequence is " + std::to_string(key_seq));
  // decode_record needs an aligned buffer; a std::string's is.
  std::string owned{record_bytes};
  auto rec = codec::decode_record(owned);
  if (!rec)
    return fail(key_seq, "undecodable record: " + rec.error().message);
  if (rec->seq.value != key_seq)
    return fail(key_seq, "record claims sequence " + std::to_string(rec->seq.value));
  if (rec->prev_hash != last_hash_)
    return fail(key_seq, "prev_hash does not match the previous commit's hash");
  if (chain_hash(last_hash_, rec->seq, rec->commit_bytes) != rec->hash)
    return fail(key_seq, "hash mismatch: the commit's bytes were changed");
  auto body = codec::decode_commit(rec->commit_bytes);
  if (!body)
    return fail(key_seq, "undecodable commit: " + body.error().message);
  auto [it, fresh] = stream_versions_.try_emplace(body->stream.value, 0);
  if (body->first_version.value != it->second + 1)
    return fail(key_seq, "stream " + body->stream.value + " jumps from version "
                           + std::to_string(it->second) + " to "
                           + std::to_string(body->first_version.value));
  it->second = body->last_version().value;
  last_seq_ = key_seq;
  last_hash_ = rec->hash;
  report_.head = rec->hash;
  report_.commits_checked += 1;
  report_.events_checked += body->events.size();
  return true;
}

} // namespace kiln::storage
