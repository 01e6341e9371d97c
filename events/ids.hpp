#pragma once
// Strong ids: a version is not a sequence is not a count.
#include <compare>
#include <cstdint>
#include <string>

namespace kiln {

// The position of an event within its stream; the first event is version 1,
// and version 0 means "the stream has no events yet".
struct stream_version {
  std::uint64_t value = 0;
  auto operator<=>(const stream_version&) const = default;
};

// The position of a commit in the whole log; the first commit is 1, 0 means
// "before everything" (subscribe or read after 0 to get it all).
struct global_seq {
  std::uint64_t value = 0;
  auto operator<=>(const global_seq&) const = default;
};

// One stream per aggregate instance: `project/foo`, `build/foo/12`,
// `run/foo/12/unit-test`, `worker/lab-3`.
struct stream_id {
  std::string value;
  auto operator<=>(const stream_id&) const = default;
};

} // namespace kiln
