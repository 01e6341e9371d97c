#pragma once
// Aggregate states to bytes and back, for the snapshots the actor hosts save
// every N events. A snapshot is a cache: one that fails to decode (an older
// layout) is ignored and the stream is replayed from its start.
#include "actors/build_aggregate.hpp"
#include "actors/project_aggregate.hpp"
#include "actors/run_aggregate.hpp"
#include "actors/token_aggregate.hpp"
#include "actors/worker_aggregate.hpp"

#include <string>
#include <string_view>

namespace kiln::domain {

std::string encode_snapshot(const project::state& s);
std::string encode_snapshot(const build::state& s);
std::string encode_snapshot(const run::state& s);
std::string encode_snapshot(const worker::state& s);
std::string encode_snapshot(const token::state& s);

// False when the bytes are not a snapshot of this kind (s is then untouched).
bool decode_snapshot(std::string_view bytes, project::state& s);
bool decode_snapshot(std::string_view bytes, build::state& s);
bool decode_snapshot(std::string_view bytes, run::state& s);
bool decode_snapshot(std::string_view bytes, worker::state& s);
bool decode_snapshot(std::string_view bytes, token::state& s);

} // namespace kiln::domain
