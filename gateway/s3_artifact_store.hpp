#pragma once
// Artifacts in an S3-compatible bucket (issue 8): uploads are put from the
// gateway's spool file (one PUT, or multipart above the client's threshold)
// on the store's own threads; downloads are a redirect to a presigned GET
// or the bytes proxied through the gateway, Range either way. Objects are
// named PREFIX<project>/<build>/<run>/<path>.
#include "gateway/artifact_store.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace kiln::storage {
struct s3_config;
}

namespace kiln::gateway {

struct s3_store_options {
  std::string prefix;                  // "" or "kiln/" (ends with '/')
  bool proxy_downloads = false;        // false: 302 to a presigned URL
  long presign_expiry_s = 300;
  std::filesystem::path spool;         // where uploads wait before they go to S3
  unsigned threads = 4;                // uploads and proxied downloads at once
};

// "s3://BUCKET[/PREFIX]" -> bucket, prefix ("" or ending with '/').
result<std::pair<std::string, std::string>> parse_s3_url(const std::string& url);

// Checks that the bucket answers to the credentials first: a store that
// cannot work is an error at start, not at the first upload.
result<std::unique_ptr<artifact_store>> make_s3_artifact_store(const storage::s3_config& s3,
                                                               s3_store_options options);

} // namespace kiln::gateway
