#pragma once
// Seals project secrets before they enter an event: AES-256-GCM with a key
// kept in the data directory (mode 0600) or given by configuration. Events
// and logs only ever see the sealed bytes.
#include "events/result.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace kiln::storage {

class secret_box {
 public:
  // Reads the 32-byte key at `key_file`, creating it (random, 0600) when
  // missing. Error "io" when it cannot, "invalid_argument" for a bad file.
  static result<secret_box> load_or_create(const std::filesystem::path& key_file);

  // A 32-byte key as 64 hex digits (configuration, tests).
  static result<secret_box> from_hex(std::string_view hex);

  // nonce (12) | ciphertext | tag (16); a fresh random nonce each time.
  std::string seal(std::string_view clear) const;

  // Error "corrupt" when the bytes were not sealed with this key.
  result<std::string> open(std::string_view sealed) const;

  // HMAC-SHA256 of `label` under the key, as hex: a value only this server
  // can make, the same each time (e.g. a worker token for a retried request).
  std::string derive(std::string_view label) const;

 private:
  explicit secret_box(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

} // namespace kiln::storage
