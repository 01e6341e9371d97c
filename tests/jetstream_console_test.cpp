// The cluster's consoles (issue 6) on a real nats-server with JetStream:
// chunks go through the KILN_CONSOLE stream and each core's copy applies
// them by offset; an append never holds its caller while JetStream answers
// (the core's actor thread used to wait there for every chunk).
#include "storage/jetstream_console_store.hpp"
#include "storage/rocksdb_event_log.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

// One core's console: its RocksDB store and the cluster's stream over it.
struct core_console {
  std::unique_ptr<storage::rocksdb_event_log> local;
  std::unique_ptr<storage::jetstream_console_store> console;

  core_console(const std::filesystem::path& dir, const std::string& url) {
    auto l = storage::rocksdb_event_log::open({.dir = dir, .sync = false});
    REQUIRE(l);
    local = std::move(*l);
    auto c = storage::jetstream_console_store::open(
      *local, {.servers = {url}, .position_file = dir / "console.copied"});
    if (!c)
      FAIL("open: " << c.error().message);
    console = std::move(*c);
  }
};

std::string read_all(storage::console_store& c, const std::string& run) {
  auto r = c.read_console(run, 0, 1 << 20);
  REQUIRE(r);
  return *r;
}

} // namespace

TEST_CASE("the cluster's console: appends by offset, a resend adds nothing, a gap is refused, "
          "every core reads the same", "[jetstream][nats][console]") {
  nats_server ns;
  temp_dir dir{"kiln-js-console"};
  core_console a{dir / "a", ns.url()}, b{dir / "b", ns.url()};
  auto first = a.console->append_console("app/1/t", 0, "hello ");
  REQUIRE(first);
  CHECK(first->size == 6);
  CHECK(first->added == 6);
  // Sent to the other core: the same stream, the next bytes.
  auto second = b.console->append_console("app/1/t", 6, "world\n");
  REQUIRE(second);
  CHECK(second->new_from == 6);
  CHECK(second->size == 12);
  // A resend of the first chunk (its reply was lost) changes nothing.
  auto again = b.console->append_console("app/1/t", 0, "hello ");
  REQUIRE(again);
  CHECK(again->added == 0);
  CHECK(again->size == 12);
  auto gap = a.console->append_console("app/1/t", 20, "later");
  REQUIRE_FALSE(gap);
  CHECK(gap.error().code == "gap");
  REQUIRE(wait_until([&] { return read_all(*b.console, "app/1/t") == "hello world\n"; }));
  CHECK(read_all(*a.console, "app/1/t") == "hello world\n");
}

TEST_CASE("a console append does not hold its caller while JetStream answers",
          "[jetstream][nats][console]") {
  nats_server ns;
  temp_dir dir{"kiln-js-console-async"};
  core_console a{dir / "a", ns.url()};
  REQUIRE(a.console->append_console("app/2/t", 0, "one\n"));

  std::mutex mu;
  std::optional<result<storage::console_append>> answer;
  std::atomic<bool> returned{false};
  ns.pause();  // the chunk is written to the socket; nothing answers
  std::thread caller{[&] {
    a.console->append_console_async("app/2/t", 4, "two\n", [&](result<storage::console_append> r) {
      std::lock_guard lock{mu};
      answer = std::move(r);
    });
    returned = true;
  }};
  bool came_back = wait_until([&] { return returned.load(); }, 10s);
  bool answered_early = false;
  {
    std::lock_guard lock{mu};
    answered_early = answer.has_value();
  }
  ns.resume();
  caller.join();
  CHECK(came_back);
  CHECK_FALSE(answered_early);
  REQUIRE(wait_until([&] {
    std::lock_guard lock{mu};
    return answer.has_value();
  }, 20s));
  REQUIRE(*answer);
  CHECK((*answer)->new_from == 4);
  CHECK((*answer)->size == 8);
  CHECK(read_all(*a.console, "app/2/t") == "one\ntwo\n");
}
