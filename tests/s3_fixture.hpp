#pragma once
// The S3-compatible server the tests use: a radosgw that deploy/dev.sh test
// starts once per run (deploy/radosgw/radosgw.sh) and names in
// KILN_TEST_S3_ENDPOINT. Each test gets a bucket of its own.
#include "storage/s3_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace kiln::test {

inline const char* s3_access_key = "kiln-test";
inline const char* s3_secret_key = "kiln-test-secret";

inline std::string s3_endpoint() {
  auto e = std::getenv("KILN_TEST_S3_ENDPOINT");
  if (!e || !*e)
    FAIL("the S3 tests need a server: run deploy/radosgw/radosgw.sh start DIR and set "
         "KILN_TEST_S3_ENDPOINT (deploy/dev.sh test does both)");
  return e;
}

inline std::string fresh_bucket_name() {
  static std::atomic<int> n{0};
  return "kiln-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-"
         + std::to_string(std::time(nullptr) % 100000);
}

inline storage::s3_config s3_test_config(const std::string& bucket) {
  storage::s3_config c;
  c.endpoint = s3_endpoint();
  c.bucket = bucket;
  c.credentials = {s3_access_key, s3_secret_key, ""};
  return c;
}

} // namespace kiln::test
