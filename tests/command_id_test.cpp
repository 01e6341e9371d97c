// Command ids make appends idempotent: a retried command returns the first
// result and appends nothing, also across a restart and in one batch.
#include "log_fixture.hpp"

#include <thread>

using namespace kiln;
using namespace kiln::test;

namespace {

storage::append_request with_id(const std::string& stream, std::uint64_t expected,
                                const std::string& id) {
  auto r = note(stream, expected, "by " + id);
  r.meta.command_id = id;
  return r;
}

} // namespace

TEST_CASE("a retried command id returns the first receipt and appends nothing", "[log][idempotency]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  auto first = log->append(with_id("build/a/1", 0, "cmd-1"));
  REQUIRE(first);
  CHECK_FALSE(first->duplicate);
  REQUIRE(log->append(note("build/a/1", 1, "someone else")));

  // The retry still carries the expected version it was decided with.
  auto retry = log->append(with_id("build/a/1", 0, "cmd-1"));
  REQUIRE(retry);
  CHECK(retry->duplicate);
  CHECK(retry->seq == first->seq);
  CHECK(retry->last_version == first->last_version);
  CHECK(log->last_seq().value == 2);

  auto elsewhere = log->append(with_id("build/a/2", 0, "cmd-1"));
  REQUIRE_FALSE(elsewhere);
  CHECK(elsewhere.error().code == "invalid_argument");
}

TEST_CASE("command ids are remembered across a reopen", "[log][idempotency]") {
  temp_dir dir;
  global_seq first;
  {
    auto log = open_log(dir.path());
    first = log->append(with_id("s", 0, "cmd-x"))->seq;
  }
  auto log = open_log(dir.path());
  auto retry = log->append(with_id("s", 0, "cmd-x"));
  REQUIRE(retry);
  CHECK(retry->duplicate);
  CHECK(retry->seq == first);
  CHECK(log->last_seq().value == 1);
}

TEST_CASE("concurrent retries of one command append it once", "[log][idempotency]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  constexpr int tries = 16;
  std::vector<result<storage::append_receipt>> results(tries, error{"unset", ""});
  std::vector<std::thread> pool;
  for (int i = 0; i < tries; ++i)
    pool.emplace_back([&, i] { results[i] = log->append(with_id("s", 0, "same")); });
  for (auto& t : pool)
    t.join();
  int fresh = 0;
  for (auto& r : results) {
    REQUIRE(r);
    CHECK(r->seq.value == 1);
    fresh += r->duplicate ? 0 : 1;
  }
  CHECK(fresh == 1);
  CHECK(log->last_seq().value == 1);
}

TEST_CASE("a command id is remembered for its window, then forgotten", "[log][idempotency]") {
  // The window spans 10 minutes of commit time, like JetStream's de-duplication
  // window; documented in docs/architecture.md.
  temp_dir dir;
  constexpr std::int64_t minute = 60'000'000'000;
  auto at = [&](std::string stream, std::uint64_t expected, std::string id, std::int64_t t) {
    auto r = with_id(stream, expected, id);
    r.meta.time_unix_ns = t;
    return r;
  };
  {
    auto log = open_log(dir.path());
    REQUIRE(log->append(at("a", 0, "old", 0)));
    REQUIRE(log->append(at("b", 0, "recent", 5 * minute)));
    REQUIRE(log->append(at("c", 0, "now", 11 * minute)));
    // "old" is 11 minutes behind the newest commit: outside the window.
    auto again = log->append(at("a", 1, "old", 11 * minute));
    REQUIRE(again);
    CHECK_FALSE(again->duplicate);
    CHECK(log->append(at("b", 0, "recent", 11 * minute))->duplicate);
  }
  // The window is rebuilt from the log's tail at open.
  auto log = open_log(dir.path());
  CHECK(log->append(at("b", 0, "recent", 12 * minute))->duplicate);
  CHECK(log->append(at("a", 1, "old", 12 * minute))->duplicate);  // its second commit
}
