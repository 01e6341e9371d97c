#include "storage/secret_box.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace kiln;

TEST_CASE("secret box: seals, opens, rejects tampering and other keys") {
  kiln::test::temp_dir dir;
  auto box = storage::secret_box::load_or_create(dir.path() / "secret.key");
  REQUIRE(box);
  auto sealed = box->seal("hunter2");
  CHECK(sealed.find("hunter2") == std::string::npos);
  CHECK(box->seal("hunter2") != sealed);  // a fresh nonce each time
  CHECK(*box->open(sealed) == "hunter2");

  auto tampered = sealed;
  tampered[14] ^= 1;
  CHECK(box->open(tampered).error().code == "corrupt");
  CHECK(box->open("short").error().code == "corrupt");

  struct stat st{};
  REQUIRE(::stat((dir.path() / "secret.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The same file gives the same key; another key cannot open it.
  auto again = storage::secret_box::load_or_create(dir.path() / "secret.key");
  CHECK(*again->open(sealed) == "hunter2");
  auto other = storage::secret_box::from_hex(std::string(64, 'a'));
  REQUIRE(other);
  CHECK_FALSE(other->open(sealed));
  CHECK(storage::secret_box::from_hex("xyz").error().code == "invalid_argument");
  CHECK(box->derive("a") == again->derive("a"));
  CHECK(box->derive("a") != other->derive("a"));
}
