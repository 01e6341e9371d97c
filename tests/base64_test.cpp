// The base64 that carries raw bytes inside JSON (the console tail of a
// final status).
#include "events/base64.hpp"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("base64 round-trips any bytes, with RFC 4648 vectors", "[base64]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (std::size_t n = 0; n < all.size(); n += 37)
    CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64_decode("Zm9vYmE=") == std::string{"fooba"});
}

TEST_CASE("base64 that is not canonical is refused", "[base64]") {
  for (auto bad : {"Zm9", "Zm9v=", "Zm=v", "Z===", "Zm9*", "Zh==", "Zm9=Zm9v", "Zm9v\n"})
    CHECK_FALSE(base64_decode(bad).has_value());
}
