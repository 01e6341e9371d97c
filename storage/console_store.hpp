#pragma once
// Console logs: bytes per run, appended at byte offsets. Not domain events
// (DESIGN.md): they live in their own column family beside the log. Appends
// are idempotent by offset, so a worker that resends a chunk after a lost
// reply changes nothing.
#include "events/result.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kiln::storage {

struct console_append {
  std::uint64_t size = 0;      // the console's length after the append
  std::uint64_t new_from = 0;  // where the bytes this append added begin
  std::uint64_t added = 0;     // how many it added (0: all were there already)
};

using console_callback = std::function<void(result<console_append>)>;

class console_store {
 public:
  virtual ~console_store() = default;
  // Bytes before the stored end are skipped; an offset past the end is
  // error "gap" (its message names the end).
  virtual result<console_append> append_console(const std::string& run, std::uint64_t offset,
                                                std::string_view bytes) = 0;
  // The same, told to `done` exactly once: for a store that waits on the
  // network (the cluster's), later and on one of its threads, so that an
  // actor never waits on it; for a local one, before returning.
  virtual void append_console_async(const std::string& run, std::uint64_t offset,
                                    std::string_view bytes, console_callback done) {
    done(append_console(run, offset, bytes));
  }
  // Up to `max` bytes from `offset` ("" at or past the end).
  virtual result<std::string> read_console(const std::string& run, std::uint64_t offset,
                                           std::size_t max) = 0;
  virtual result<std::uint64_t> console_size(const std::string& run) = 0;
};

} // namespace kiln::storage
