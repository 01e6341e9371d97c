// Console logs in their column family: appends by offset, idempotent resends,
// gaps refused, reads across chunks, kept across a reopen.
#include "log_fixture.hpp"

using namespace kiln;
using namespace kiln::test;

TEST_CASE("console appends are idempotent by offset and refuse gaps") {
  temp_dir dir;
  auto log = open_log(dir.path());
  const std::string run = "app/1/unit";

  auto first = log->append_console(run, 0, "hello ");
  REQUIRE(first);
  CHECK(first->size == 6);
  CHECK(first->added == 6);

  // The same chunk again (a lost reply): accepted, nothing added.
  auto again = log->append_console(run, 0, "hello ");
  REQUIRE(again);
  CHECK(again->size == 6);
  CHECK(again->added == 0);

  // Overlapping: only the new tail is kept.
  auto overlap = log->append_console(run, 3, "lo world\n");
  REQUIRE(overlap);
  CHECK(overlap->new_from == 6);
  CHECK(overlap->added == 6);
  CHECK(overlap->size == 12);

  auto gap = log->append_console(run, 20, "x");
  REQUIRE_FALSE(gap);
  CHECK(gap.error().code == "gap");
  CHECK(gap.error().message.find("12") != std::string::npos);

  CHECK(*log->read_console(run, 0, 100) == "hello world\n");
  CHECK(*log->read_console(run, 4, 3) == "o w");
  CHECK(*log->read_console(run, 12, 100) == "");
  CHECK(*log->console_size("app/1/other") == 0);
  CHECK(*log->read_console("app/1/other", 0, 10) == "");
  // A run whose name extends another's keeps its own bytes.
  REQUIRE(log->append_console(run + "x", 0, "zz"));
  CHECK(*log->read_console(run, 0, 100) == "hello world\n");
  CHECK(*log->console_size(run) == 12);
}

TEST_CASE("console bytes survive a reopen") {
  temp_dir dir;
  {
    auto log = open_log(dir.path());
    for (int i = 0; i < 100; ++i)
      REQUIRE(log->append_console("p/2/r", static_cast<std::uint64_t>(i) * 4, "abc\n"));
  }
  auto log = open_log(dir.path());
  CHECK(*log->console_size("p/2/r") == 400);
  auto text = log->read_console("p/2/r", 398, 10);
  CHECK(*text == "c\n");
}
