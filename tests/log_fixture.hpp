#pragma once
// Shared helpers for tests of the RocksDB event log.
#include "storage/rocksdb_event_log.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace kiln::test {

inline std::unique_ptr<storage::rocksdb_event_log> open_log(const std::filesystem::path& dir,
                                                            bool read_only = false) {
  auto log = storage::rocksdb_event_log::open({.dir = dir, .read_only = read_only});
  if (!log)
    FAIL("open: " << log.error().message);
  return std::move(*log);
}

// One commit of one event whose text says who wrote it.
inline storage::append_request note(const std::string& stream, std::uint64_t expected,
                                    const std::string& text) {
  storage::append_request r;
  r.stream = {stream};
  r.expected = {expected};
  r.meta = {1'700'000'000'000'000'000, "test", "", ""};
  r.events.push_back(run_completed{status::passed, 0, text});
  return r;
}

inline std::string text_of(const logged_commit& c, std::size_t i = 0) {
  return std::get<run_completed>(c.body.events.at(i)).message;
}

} // namespace kiln::test
