#pragma once
// Replaces every secret's value with "***" in a byte stream cut into
// arbitrary chunks: a value split across two chunks is still masked, so
// the tail that could begin a secret is held back until the next chunk.
#include <string>
#include <string_view>
#include <vector>

namespace kiln::worker {

class secret_masker {
 public:
  // Values shorter than `min_length` are not masked: "1" or "a" would turn
  // the whole log into stars (the worker logs which keys were skipped).
  static constexpr std::size_t min_length = 3;

  explicit secret_masker(std::vector<std::string> values);

  // The masked bytes that can be released now.
  std::string feed(std::string_view chunk);
  // Whatever was held back, at the end of the stream.
  std::string flush();

  // One whole text (a test name, a message): masked at once.
  std::string mask(std::string_view text) const;

 private:
  std::size_t scan(std::string_view text, std::string& out, bool hold) const;

  std::vector<std::string> values_;  // longest first: the longest match wins
  std::string held_;
};

} // namespace kiln::worker
