// The S3 client against a real radosgw (which checks every signature):
// objects of 0 bytes, 1 KiB and 7 MiB (multipart) with awkward names land
// byte-identical, ranges and listings work, presigned URLs work until they
// are tampered with, and wrong credentials or no server are clear errors.
#include "s3_fixture.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

#include <fstream>
#include <random>

using namespace kiln;
using namespace kiln::test;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen{seed};
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(gen() & 0xff);
  return out;
}

std::string fetch(storage::s3_client& s3, const std::string& key,
                  std::optional<std::pair<std::uint64_t, std::uint64_t>> range = {}) {
  std::string got;
  auto r = s3.get(key, [&](std::string_view b) { got.append(b); return true; }, range);
  INFO(key << ": " << (r ? "" : r.error().message));
  REQUIRE(r);
  return got;
}

// "http://127.0.0.1:7480/path?query" -> port, target.
std::pair<std::uint16_t, std::string> split_url(const std::string& url) {
  auto host_start = url.find("://") + 3;
  auto colon = url.find(':', host_start);
  auto slash = url.find('/', host_start);
  return {static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1, slash - colon - 1))),
          url.substr(slash)};
}

} // namespace

TEST_CASE("s3 client: objects of any size and name land byte-identical", "[s3]") {
  auto config = s3_test_config(fresh_bucket_name());
  config.multipart_threshold = 5u << 20;
  config.part_size = 5u << 20;
  storage::s3_client s3{config};
  REQUIRE(s3.create_bucket());
  REQUIRE(s3.check_bucket());
  temp_dir dir{"kiln-s3"};

  struct object {
    std::string key;
    std::string bytes;
  };
  std::vector<object> objects{
    {"p/1/run/empty.txt", ""},
    {"p/1/run/one kib+=.bin", random_bytes(1024, 1)},
    {"p/1/run/dir/seven \xc3\xa9t\xc3\xa9.bin", random_bytes(7u << 20, 2)},  // multipart: 2 parts
  };
  for (auto& o : objects) {
    auto file = dir / "upload";
    std::ofstream{file, std::ios::binary} << o.bytes;
    auto put = s3.put_file(o.key, file);
    INFO(o.key << ": " << (put ? "" : put.error().message));
    REQUIRE(put);
    CHECK(fetch(s3, o.key) == o.bytes);
    auto head = s3.head(o.key);
    REQUIRE(head);
    CHECK(head->size == o.bytes.size());
  }
  // A multipart object's ETag says how many parts it has.
  CHECK_THAT(s3.head(objects[2].key)->etag, Catch::EndsWith("-2\""));
  CHECK(fetch(s3, objects[2].key, std::pair{std::uint64_t{5u << 20}, std::uint64_t{(5u << 20) + 9}})
        == objects[2].bytes.substr(5u << 20, 10));
  REQUIRE(s3.put_bytes("p/2/run/console.log", "hello\n", "text/plain"));

  auto listed = s3.list("p/1/");
  REQUIRE(listed);
  REQUIRE(listed->size() == 3);
  CHECK((*listed)[0].key == "p/1/run/dir/seven \xc3\xa9t\xc3\xa9.bin");
  CHECK((*listed)[1].size == 0);

  // Presigned: anyone may GET it; a tampered one is refused.
  auto url = s3.presigned_get(objects[1].key, 300, std::time(nullptr));
  auto [port, target] = split_url(url);
  auto got = http_request("127.0.0.1", port, "GET", target);
  CHECK(got.status == 200);
  CHECK(got.body == objects[1].bytes);
  auto tampered = target;
  tampered[tampered.size() - 1] = tampered.back() == '0' ? '1' : '0';
  CHECK(http_request("127.0.0.1", port, "GET", tampered).status == 403);
  auto expired = split_url(s3.presigned_get(objects[1].key, 1, std::time(nullptr) - 3600)).second;
  CHECK(http_request("127.0.0.1", port, "GET", expired).status == 403);

  for (auto& o : objects)
    REQUIRE(s3.remove(o.key));
  REQUIRE(s3.remove("p/2/run/console.log"));
  CHECK(s3.list("p/")->empty());
  auto gone = s3.head(objects[0].key);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == "not_found");
}

TEST_CASE("s3 client: a wrong secret, a missing bucket and no server are clear errors", "[s3]") {
  auto config = s3_test_config(fresh_bucket_name());
  {
    storage::s3_client s3{config};
    REQUIRE(s3.create_bucket());
  }
  auto wrong = config;
  wrong.credentials.secret_key = "not-the-secret";
  storage::s3_client bad{wrong};
  auto r = bad.check_bucket();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "unauthorized");
  auto put = bad.put_bytes("x", "y");
  REQUIRE_FALSE(put);
  CHECK(put.error().code == "unauthorized");
  CHECK_THAT(put.error().message, Catch::Contains("SignatureDoesNotMatch"));

  auto missing = config;
  missing.bucket = fresh_bucket_name();
  auto nb = storage::s3_client{missing}.check_bucket();
  REQUIRE_FALSE(nb);
  CHECK(nb.error().code == "not_found");

  auto nowhere = config;
  nowhere.endpoint = "http://127.0.0.1:9";
  auto down = storage::s3_client{nowhere}.check_bucket();
  REQUIRE_FALSE(down);
  CHECK(down.error().code == "unreachable");
}
