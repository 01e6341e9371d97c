// The event log's contract: expected versions, gap-free sequences, exactly
// once acknowledgement, reads, snapshots, reopen, read-only opens.
#include "log_fixture.hpp"
#include "events/codec.hpp"
#include "support/process.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace kiln;
using namespace kiln::test;

TEST_CASE("appends check the expected version", "[log]") {
  temp_dir dir;
  auto log = open_log(dir.path());

  auto first = log->append(note("run/a/1/x", 0, "one"));
  REQUIRE(first);
  CHECK(first->seq.value == 1);
  CHECK(first->last_version.value == 1);

  SECTION("a stale expected version is a conflict and appends nothing") {
    auto again = log->append(note("run/a/1/x", 0, "lost the race"));
    REQUIRE_FALSE(again);
    CHECK(again.error().code == "conflict");
    auto ahead = log->append(note("run/a/1/x", 5, "from the future"));
    REQUIRE_FALSE(ahead);
    CHECK(ahead.error().code == "conflict");
    CHECK(log->last_seq().value == 1);
    CHECK(log->last_version({"run/a/1/x"})->value == 1);
  }
  SECTION("the right expected version appends; a multi-event commit takes one sequence") {
    auto req = note("run/a/1/x", 1, "two");
    req.events.push_back(run_completed{status::failed, 1, "three"});
    auto second = log->append(req);
    REQUIRE(second);
    CHECK(second->seq.value == 2);
    CHECK(second->last_version.value == 3);
    auto commits = log->read_stream({"run/a/1/x"}, {2}, 10);
    REQUIRE(commits);
    REQUIRE(commits->size() == 1);
    CHECK(commits->front().body.first_version.value == 2);
    CHECK(text_of(commits->front(), 1) == "three");
  }
  SECTION("an empty append is refused") {
    storage::append_request empty;
    empty.stream = {"run/a/1/x"};
    auto r = log->append(empty);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "invalid_argument");
  }
}

TEST_CASE("streams read back in order from any version, unknown streams are empty", "[log]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  for (std::uint64_t v = 0; v < 10; ++v) {
    REQUIRE(log->append(note("build/a/1", v, "b" + std::to_string(v))));
    REQUIRE(log->append(note("build/a/2", v, "c" + std::to_string(v))));
  }
  auto tail = log->read_stream({"build/a/1"}, {4}, 100);
  REQUIRE(tail);
  REQUIRE(tail->size() == 7);
  for (std::size_t i = 0; i < tail->size(); ++i) {
    CHECK((*tail)[i].body.first_version.value == 4 + i);
    CHECK(text_of((*tail)[i]) == "b" + std::to_string(3 + i));
  }
  CHECK(log->read_stream({"build/a/1"}, {1}, 3)->size() == 3);
  CHECK(log->read_stream({"build/a/10"}, {1}, 3)->empty());  // a prefix of no stream
  CHECK(log->last_version({"build/a/10"})->value == 0);
  CHECK(log->last_version({"build/a/2"})->value == 10);
}

TEST_CASE("the log reopens where it stopped and the chain continues", "[log]") {
  temp_dir dir;
  digest head{};
  {
    auto log = open_log(dir.path());
    REQUIRE(log->append(note("s", 0, "a")));
    REQUIRE(log->append(note("s", 1, "b")));
    head = log->read_all({1}, 1)->front().hash;
  }
  auto log = open_log(dir.path());
  CHECK(log->last_seq().value == 2);
  CHECK(log->last_version({"s"})->value == 2);
  CHECK_FALSE(log->append(note("s", 1, "stale after restart")));
  auto third = log->append(note("s", 2, "c"));
  REQUIRE(third);
  CHECK(third->seq.value == 3);
  auto all = log->read_all({0}, 10);
  REQUIRE(all->size() == 3);
  CHECK((*all)[2].prev_hash == head);
}

TEST_CASE("snapshots are kept per stream and survive a reopen", "[log]") {
  temp_dir dir;
  {
    auto log = open_log(dir.path());
    CHECK_FALSE(log->load_snapshot({"project/a"})->has_value());
    REQUIRE(log->save_snapshot({"project/a"}, {{4}, std::string("state\0bytes", 11)}));
    REQUIRE(log->save_snapshot({"project/a"}, {{9}, "newer"}));
  }
  auto log = open_log(dir.path());
  auto snap = log->load_snapshot({"project/a"});
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  CHECK((*snap)->version.value == 9);
  CHECK((*snap)->bytes == "newer");
  CHECK_FALSE(log->load_snapshot({"project/b"})->has_value());
}

TEST_CASE("concurrent appenders: gap-free versions and sequences, each acknowledged once",
          "[log][concurrency]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  constexpr int threads = 8;
  constexpr int per_thread = 150;
  std::mutex mu;
  std::map<std::uint64_t, std::string> acked;  // seq -> text
  std::atomic<int> conflicts{0};
  std::vector<std::string> problems;  // Catch2 v2 asserts only on the main thread
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        // Half the appends race on one shared stream, half go to the thread's own.
        bool shared = i % 2 == 0;
        auto stream = shared ? std::string{"shared"} : "own/" + std::to_string(t);
        auto text = std::to_string(t) + ":" + std::to_string(i);
        for (;;) {
          auto expected = log->last_version({stream});
          auto r = log->append(note(stream, expected ? expected->value : 0, text));
          std::lock_guard lock{mu};
          if (r) {
            if (!acked.emplace(r->seq.value, text).second)
              problems.push_back("sequence acknowledged twice: " + std::to_string(r->seq.value));
            break;
          }
          if (r.error().code != "conflict") {
            problems.push_back(r.error().message);
            break;
          }
          ++conflicts;
        }
      }
    });
  for (auto& t : pool)
    t.join();
  CHECK(problems.empty());

  constexpr auto total = threads * per_thread;
  REQUIRE(acked.size() == total);
  CHECK(acked.begin()->first == 1);
  CHECK(acked.rbegin()->first == total);  // no gaps: keys 1..total, all distinct

  auto all = log->read_all({0}, total + 10);
  REQUIRE(all);
  REQUIRE(all->size() == total);
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < all->size(); ++i) {
    auto& c = (*all)[i];
    CHECK(c.seq.value == i + 1);
    CHECK(acked.at(c.seq.value) == text_of(c));  // the acknowledged commit is the stored one
    auto& v = versions[c.body.stream.value];
    CHECK(c.body.first_version.value == v + 1);  // gap-free per stream
    v = c.body.last_version().value;
  }
  CHECK(versions["shared"] == threads * per_thread / 2);
  INFO("conflicts seen: " << conflicts.load());
}

TEST_CASE("a read-only open beside a live writer sees its commits after a refresh", "[log]") {
  temp_dir dir;
  auto writer = open_log(dir.path());
  REQUIRE(writer->append(note("s", 0, "before")));
  auto reader = open_log(dir.path(), true);
  CHECK(reader->last_seq().value == 1);
  REQUIRE(writer->append(note("s", 1, "after")));
  REQUIRE(reader->refresh());
  auto all = reader->read_all({0}, 10);
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK(text_of((*all)[1]) == "after");
  auto r = reader->append(note("s", 2, "nope"));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "read_only");
}

TEST_CASE("a read-only open beside an unsynced copy sees what it took without a close", "[log]") {
  temp_dir dir;
  auto copy = storage::rocksdb_event_log::open({.dir = dir.path(), .sync = false});
  REQUIRE(copy);
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto r = note("s", i, "copied " + std::to_string(i));
    commit c{r.stream, {i + 1}, r.meta, r.events};
    REQUIRE((*copy)->replicate(10 + i, codec::encode_commit(c)));
  }
  auto reader = open_log(dir.path(), true);
  // Its WAL reaches the file in the background, not on each write.
  std::size_t seen = 0;
  CHECK(wait_until([&] {
    if (!reader->refresh())
      return false;
    auto all = reader->read_all({0}, 10);
    seen = all ? all->size() : 0;
    return seen == 3;
  }));
  CHECK(seen == 3);
  CHECK((*copy)->copy_position() == 12);
}

TEST_CASE("opening a missing log read-only is a clear error", "[log]") {
  temp_dir dir;
  auto log = storage::rocksdb_event_log::open({.dir = dir / "nothing", .read_only = true});
  REQUIRE_FALSE(log);
  CHECK(log.error().message.find("no event log") != std::string::npos);
}
