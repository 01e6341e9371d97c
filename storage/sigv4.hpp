#pragma once
// AWS Signature Version 4 for S3, pure (no I/O, the clock passed in): the
// Authorization header for a request, and presigned URLs. The rules that
// commonly go wrong (../shared/runtime-notes.md) are the unit tests' cases:
// x-amz-content-sha256 always sent, query names and values all encoded and
// sorted, a valueless parameter as "name=", the path encoded once with '/'
// kept, the host with its port.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::storage {

struct s3_credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials; empty otherwise
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct sigv4_request {
  std::string method;      // GET, PUT, ...
  std::string host;        // "bucket.s3.amazonaws.com" or "127.0.0.1:7480" (port when not 80/443)
  std::string path;        // not encoded: "/bucket/a b+c.txt"
  header_list query;       // not encoded: {"uploadId", "x"}, {"uploads", ""}
  header_list headers;     // signed besides host and x-amz-*: range, content-type, ...
  std::string payload_sha256 = "UNSIGNED-PAYLOAD";  // hex, or UNSIGNED-PAYLOAD
};

struct sigv4_signature {
  header_list headers;  // to send: x-amz-date, x-amz-content-sha256, [x-amz-security-token,] authorization
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // hex
};

// `amz_date` is "YYYYMMDDTHHMMSSZ" (UTC).
sigv4_signature sign(const sigv4_request& r, const s3_credentials& c, const std::string& region,
                     const std::string& amz_date, const std::string& service = "s3");

// The request's path and query with the X-Amz-* parameters of a presigned
// URL valid for `expires_s` seconds from `amz_date` (payload unsigned).
std::string presign(const sigv4_request& r, const s3_credentials& c, const std::string& region,
                    const std::string& amz_date, long expires_s,
                    const std::string& service = "s3");

// RFC 3986 percent-encoding as SigV4 wants it (unreserved kept, '/' kept
// when `keep_slash`).
std::string uri_encode(std::string_view s, bool keep_slash);

// "YYYYMMDDTHHMMSSZ" for a Unix time.
std::string amz_date(long long unix_s);

} // namespace kiln::storage
