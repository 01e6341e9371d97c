#pragma once
// Request targets: path segments (percent-decoded, normalised) and query
// parameters, and the relative paths of artifacts.
#include "events/result.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::gateway {

struct parsed_target {
  std::vector<std::string> segments;  // "/v1/projects/a" -> {"v1", "projects", "a"}
  std::map<std::string, std::string> query;
};

// Error "bad_request" for a bad escape, a NUL, or a "." / ".." segment:
// nothing may name a place outside where its route points.
result<parsed_target> parse_target(std::string_view target);

// A path inside a run's artifact folder: relative, '/'-separated, no empty,
// "." or ".." part, no backslash or NUL. Error "bad_request" otherwise.
result<std::string> artifact_path(std::string_view path);

std::optional<std::uint64_t> to_u64(std::string_view s);

} // namespace kiln::gateway
