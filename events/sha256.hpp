#pragma once
// SHA-256 and HMAC-SHA256 as kiln uses them (artifact and console digests,
// S3 signatures, webhook signatures), hex unless said otherwise. OpenSSL
// stays in the .cpp.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln {

// Bytes that arrive in pieces.
class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(std::string_view bytes);
  // The digest of every byte so far, as hex; nothing may be added after.
  std::string hex();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

std::string sha256_hex(std::string_view bytes);
// The digest of a file's bytes; `size` (when given) gets how many there were.
std::string sha256_file_hex(const std::filesystem::path& file, std::uint64_t* size = nullptr);
// HMAC-SHA256(key, data) as raw bytes (SigV4 chains these).
std::string hmac_sha256(std::string_view key, std::string_view data);

} // namespace kiln
