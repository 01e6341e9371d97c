// SigV4 against AWS's own documented examples (S3 API reference,
// "Signature Calculations for the Authorization Header" and "Query String
// Authentication"): header auth for GET with a range, PUT with a body and
// a '$' in the key, a valueless query parameter, list with parameters to
// sort, and a presigned GET.
#include "events/sha256.hpp"
#include "storage/sigv4.hpp"

#include <catch2/catch.hpp>

using namespace kiln::storage;
using kiln::sha256_hex;

namespace {

const s3_credentials aws{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const char* host = "examplebucket.s3.amazonaws.com";
const char* date = "20130524T000000Z";
const char* empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string header(const sigv4_signature& s, const std::string& name) {
  for (auto& [k, v] : s.headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("sigv4: GET an object with a range (AWS example)") {
  auto s = sign({"GET", host, "/test.txt", {}, {{"Range", "bytes=0-9"}}, empty_sha}, aws, "us-east-1", date);
  CHECK(s.canonical_request ==
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(s.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  CHECK(header(s, "authorization") ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  CHECK(header(s, "x-amz-content-sha256") == empty_sha);
}

TEST_CASE("sigv4: PUT an object whose key needs encoding (AWS example)") {
  std::string body = "Welcome to Amazon S3.";
  CHECK(sha256_hex(body) == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  auto s = sign({"PUT", host, "/test$file.text", {},
                 {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                 sha256_hex(body)},
                aws, "us-east-1", date);
  CHECK_THAT(s.canonical_request, Catch::StartsWith("PUT\n/test%24file.text\n\n"));
  CHECK(s.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("sigv4: a valueless query parameter is signed as name= (AWS example)") {
  auto s = sign({"GET", host, "/", {{"lifecycle", ""}}, {}, empty_sha}, aws, "us-east-1", date);
  CHECK_THAT(s.canonical_request, Catch::StartsWith("GET\n/\nlifecycle=\n"));
  CHECK(s.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_CASE("sigv4: query parameters are sorted and encoded (AWS example)") {
  auto s = sign({"GET", host, "/", {{"prefix", "J"}, {"max-keys", "2"}}, {}, empty_sha}, aws,
                "us-east-1", date);
  CHECK_THAT(s.canonical_request, Catch::StartsWith("GET\n/\nmax-keys=2&prefix=J\n"));
  CHECK(s.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST_CASE("sigv4: a presigned GET (AWS example)") {
  auto url = presign({"GET", host, "/test.txt", {}, {}, ""}, aws, "us-east-1", date, 86400);
  CHECK_THAT(url, Catch::StartsWith("/test.txt?"));
  CHECK_THAT(url, Catch::Contains(
                    "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
  CHECK_THAT(url, Catch::Contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"));
  CHECK_THAT(url, Catch::Contains("X-Amz-Expires=86400"));
  CHECK_THAT(url, Catch::Contains("X-Amz-SignedHeaders=host"));
}

TEST_CASE("sigv4: keys with spaces, plus, equals and UTF-8 are encoded once") {
  CHECK(uri_encode("/b/dir/a b+c=d.txt", true) == "/b/dir/a%20b%2Bc%3Dd.txt");
  CHECK(uri_encode("\xc3\xa9t\xc3\xa9", true) == "%C3%A9t%C3%A9");
  CHECK(uri_encode("a/b", false) == "a%2Fb");
  CHECK(amz_date(1369353600) == "20130524T000000Z");
  // A session token is sent and signed.
  auto s = sign({"GET", "127.0.0.1:7480", "/b/k", {}, {}, empty_sha},
                {"AK", "SK", "TOKEN"}, "us-east-1", date);
  CHECK(header(s, "x-amz-security-token") == "TOKEN");
  CHECK_THAT(s.canonical_request, Catch::Contains("host:127.0.0.1:7480\n"));
  CHECK_THAT(header(s, "authorization"), Catch::Contains("x-amz-security-token"));
}
