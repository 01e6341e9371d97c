#pragma once
// A small S3 client (libcurl + sigv4.hpp) for what kiln stores: objects put
// from files (one PUT below a threshold, multipart above it, bounded parts
// in parallel, aborted on failure), read whole or by range into a sink,
// listed, deleted, and presigned for GET. libcurl stays in the .cpp.
#include "events/result.hpp"
#include "storage/sigv4.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::storage {

struct s3_config {
  std::string endpoint;  // "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com"
  std::string region = "us-east-1";
  std::string bucket;
  bool path_style = true;  // false: virtual-host style (https://BUCKET.host/key)
  s3_credentials credentials;
  std::uint64_t multipart_threshold = 16ull << 20;  // at or above: multipart
  std::uint64_t part_size = 8ull << 20;             // at least 5 MiB (S3's minimum)
  unsigned parallel_parts = 3;
  // A streamed upload of known length up to this is one PUT (S3 allows
  // 5 GiB); above it, or of unknown length, a multipart upload.
  std::uint64_t stream_put_max = 1ull << 30;
  long timeout_ms = 120'000;  // one request
};

// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), else the
// [AWS_PROFILE or default] section of AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials. Error "unauthorized" when neither has a key.
result<s3_credentials> load_s3_credentials();

struct s3_object {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;
};

// Errors: "unreachable" (no answer), "unauthorized" (403: a wrong key or
// secret, a bad signature), "not_found" (404: no bucket or key), "io"
// (anything else), each with S3's own code and message when it sent one.
class s3_client {
 public:
  explicit s3_client(s3_config config);
  ~s3_client();
  s3_client(const s3_client&) = delete;
  s3_client& operator=(const s3_client&) = delete;

  const s3_config& config() const;

  // The bucket answers to these credentials (HEAD bucket).
  status_result check_bucket();
  status_result create_bucket();
  // The bucket must be empty (S3's rule).
  status_result delete_bucket();

  // `sha256` is the file's hex digest when known (else it is computed).
  status_result put_file(const std::string& key, const std::filesystem::path& file,
                         const std::string& content_type = "application/octet-stream",
                         std::string sha256 = {});
  status_result put_bytes(const std::string& key, std::string_view data,
                          const std::string& content_type = "application/octet-stream");

  // One PUT of `size` bytes that `read(buf, max)` hands over as they come:
  // it blocks until it has some, and returns how many it copied (never 0
  // before `size`), or abort_transfer to stop: S3 then keeps nothing.
  using source = std::function<std::size_t(char* buf, std::size_t max)>;
  static constexpr std::size_t abort_transfer = static_cast<std::size_t>(-1);
  status_result put_stream(const std::string& key, std::uint64_t size,
                           const std::string& content_type, const source& read);

  // A multipart upload step by step (for bytes that arrive over time): parts
  // numbered from 1, each at least 5 MiB but the last; an upload that is not
  // completed must be aborted, or S3 keeps its parts.
  result<std::string> start_multipart(const std::string& key, const std::string& content_type);
  result<std::string> put_part(const std::string& key, const std::string& upload_id,
                               unsigned number, std::string_view bytes);  // its ETag
  status_result complete_multipart(const std::string& key, const std::string& upload_id,
                                   const std::vector<std::string>& etags);
  void abort_multipart(const std::string& key, const std::string& upload_id);

  // The object's bytes (or [first, last] of them) to `sink`, in order; a
  // sink returning false stops the transfer (error "io").
  using sink = std::function<bool(std::string_view)>;
  status_result get(const std::string& key, const sink& out,
                    std::optional<std::pair<std::uint64_t, std::uint64_t>> range = {});
  result<s3_object> head(const std::string& key);
  status_result remove(const std::string& key);
  // Every object under `prefix`, in key order.
  result<std::vector<s3_object>> list(const std::string& prefix);
  // The keys of multipart uploads started and neither completed nor aborted.
  result<std::vector<std::string>> list_uploads(const std::string& prefix);

  // A URL anyone may GET for `expires_s` seconds from `now_unix_s`.
  std::string presigned_get(const std::string& key, long expires_s, long long now_unix_s) const;
  // Likewise for a PUT of the object's bytes (unsigned payload).
  std::string presigned_put(const std::string& key, long expires_s, long long now_unix_s) const;

  struct impl;

 private:
  status_result put_multipart(const std::string& key, const std::filesystem::path& file,
                              std::uint64_t size, const std::string& content_type);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::storage
