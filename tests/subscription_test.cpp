// Subscribing from any past sequence while writers append: every later
// commit exactly once, in order, across the switch from history to live.
#include "log_fixture.hpp"
#include "events/codec.hpp"
#include "support/process.hpp"

#include <atomic>
#include <mutex>
#include <thread>

using namespace kiln;
using namespace kiln::test;

TEST_CASE("a subscriber from a past sequence sees every later commit once, in order",
          "[log][subscribe]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  constexpr std::uint64_t history = 700;  // more than one page of history
  for (std::uint64_t i = 0; i < history; ++i)
    REQUIRE(log->append(note("history", i, "h" + std::to_string(i))));

  const std::uint64_t start = GENERATE(0, 1, 333, 700);
  const auto live = GENERATE(storage::live_delivery::own_thread, storage::live_delivery::writer_thread);
  std::mutex mu;
  std::vector<std::uint64_t> seen;
  std::atomic<bool> failed{false};
  auto sub = log->subscribe(
    {start},
    [&](const logged_commit& c) {
      std::lock_guard lock{mu};
      seen.push_back(c.seq.value);
      return true;
    },
    [&](const error&) { failed = true; }, live);

  constexpr int writers = 4;
  constexpr int per_writer = 250;
  std::atomic<int> append_failures{0};
  std::vector<std::thread> pool;
  for (int w = 0; w < writers; ++w)
    pool.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i)
        if (!log->append(note("live/" + std::to_string(w), i, "x")))
          ++append_failures;
    });
  for (auto& t : pool)
    t.join();
  REQUIRE(append_failures == 0);

  const auto last = history + writers * per_writer;
  REQUIRE(wait_until([&] {
    std::lock_guard lock{mu};
    return seen.size() >= last - start;
  }));
  sub.reset();  // no more deliveries after this
  CHECK_FALSE(failed);
  REQUIRE(seen.size() == last - start);
  for (std::size_t i = 0; i < seen.size(); ++i)
    REQUIRE(seen[i] == start + 1 + i);
}

TEST_CASE("a handler returning false ends its subscription", "[log][subscribe]") {
  temp_dir dir;
  auto log = open_log(dir.path());
  std::atomic<int> calls{0};
  const auto live = GENERATE(storage::live_delivery::own_thread, storage::live_delivery::writer_thread);
  auto sub = log->subscribe({0}, [&](const logged_commit&) { return ++calls < 3; }, {}, live);
  // Appended after subscribing: a writer_thread subscriber mostly hears them live.
  for (std::uint64_t i = 0; i < 10; ++i)
    REQUIRE(log->append(note("s", i, "x")));
  REQUIRE(wait_until([&] { return calls.load() == 3; }));
  REQUIRE(log->append(note("s", 10, "after the end")));
  // Another subscriber seeing the new commit proves delivery has moved on.
  std::atomic<bool> other_saw{false};
  auto probe = log->subscribe({10}, [&](const logged_commit&) { return !(other_saw = true); });
  REQUIRE(wait_until([&] { return other_saw.load(); }));
  sub.reset();
  CHECK(calls.load() == 3);
}

// A cluster core's copy writes on its delivery thread; with writer_thread
// the subscriber is handed each live commit right there, with no thread
// of its own woken in between.
TEST_CASE("a writer_thread subscription gets live commits on the thread that wrote them",
          "[log][subscribe]") {
  temp_dir dir;
  auto copy = storage::rocksdb_event_log::open({.dir = dir.path(), .sync = false});
  REQUIRE(copy);
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::thread::id>> seen;
  auto sub = (*copy)->subscribe(
    {0},
    [&](const logged_commit& c) {
      std::lock_guard lock{mu};
      seen.emplace_back(c.seq.value, std::this_thread::get_id());
      return true;
    },
    {}, storage::live_delivery::writer_thread);
  // The subscription catches up on its own thread first: copy until a
  // commit reaches it on this one.
  std::uint64_t copied = 0;
  auto on_this_thread = [&] {
    std::lock_guard lock{mu};
    return !seen.empty() && seen.back().second == std::this_thread::get_id();
  };
  REQUIRE(wait_until([&] {
    auto r = note("s", copied, "copied " + std::to_string(copied));
    commit c{r.stream, {copied + 1}, r.meta, r.events};
    if (!(*copy)->replicate(100 + copied, codec::encode_commit(c)))
      return false;
    ++copied;
    return on_this_thread();
  }));
  for (int i = 0; i < 5; ++i, ++copied) {
    auto r = note("s", copied, "live " + std::to_string(copied));
    commit c{r.stream, {copied + 1}, r.meta, r.events};
    REQUIRE((*copy)->replicate(100 + copied, codec::encode_commit(c)));
  }
  sub.reset();
  std::lock_guard lock{mu};
  REQUIRE(seen.size() == copied);  // each once, in order, across the switch
  for (std::size_t i = 0; i < seen.size(); ++i)
    REQUIRE(seen[i].first == i + 1);
  CHECK(seen.back().second == std::this_thread::get_id());
}
