#pragma once
// What crash_writer appends at (stream, version), so crash_test can rebuild it.
#include <cstdint>
#include <string>

namespace kiln::test {
inline std::string crash_payload(const std::string& stream, std::uint64_t version) {
  return stream + "#" + std::to_string(version) + std::string(100 + version % 50, '*');
}
} // namespace kiln::test
