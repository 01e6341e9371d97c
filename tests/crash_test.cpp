// Crash safety with a real process: a child appends in a loop and reports
// each acknowledged commit; it is SIGKILLed at a random moment. Reopened,
// the log holds every acknowledged commit byte for byte and its chain
// verifies; appends then carry on. An unsynced copy (a cluster core's) may
// lose its tail, but what it holds after a crash is a prefix of what it
// took, with its copy position at that prefix's end.
#include "crash_payload.hpp"
#include "log_fixture.hpp"
#include "storage/audit.hpp"
#include "support/process.hpp"

#include <csignal>
#include <random>
#include <sstream>

using namespace kiln;
using namespace kiln::test;

namespace {

struct ack {
  std::uint64_t seq;
  std::string stream;
  std::uint64_t version;
};

ack next_ack(child_process& child) {
  auto line = child.read_line();
  REQUIRE(line);
  std::istringstream in{*line};
  std::string word;
  ack a;
  in >> word >> a.seq >> a.stream >> a.version;
  REQUIRE(word == "ack");
  return a;
}

// The chain verifies; the number of commits it holds.
std::uint64_t intact_chain(storage::rocksdb_event_log& log) {
  storage::chain_verifier verifier;
  REQUIRE(log.scan_records({0}, true, [&](std::uint64_t seq, std::string_view bytes) {
    return verifier.feed(seq, bytes);
  }));
  INFO(verifier.report().reason);
  REQUIRE(verifier.report().intact());
  return verifier.report().commits_checked;
}

} // namespace

TEST_CASE("SIGKILL at a random moment loses no acknowledged commit", "[log][crash]") {
  temp_dir dir;
  std::mt19937 rng{std::random_device{}()};
  std::vector<ack> acks;
  for (int round = 0; round < 3; ++round) {
    child_process child{{{CRASH_WRITER_BINARY, dir.path().string()}}};
    REQUIRE(child.wait_for_line("ready"));
    const auto kill_after = 50 + rng() % 400;
    for (std::size_t n = 0; n < kill_after; ++n)
      acks.push_back(next_ack(child));
    child.signal(SIGKILL);
    REQUIRE(child.wait() == 128 + SIGKILL);
    INFO("round " << round << " killed after " << kill_after << " acks");

    auto log = open_log(dir.path());
    for (auto& a : acks) {
      auto commits = log->read_all({a.seq - 1}, 1);
      REQUIRE(commits);
      REQUIRE(commits->size() == 1);
      auto& c = commits->front();
      REQUIRE(c.seq.value == a.seq);
      REQUIRE(c.body.stream.value == a.stream);
      REQUIRE(c.body.first_version.value == a.version);
      REQUIRE(text_of(c) == crash_payload(a.stream, a.version));
      REQUIRE(c.body.meta.time_unix_ns == static_cast<std::int64_t>(a.version - 1));
    }
    CHECK(intact_chain(*log) >= acks.size());
  }
}

TEST_CASE("a SIGKILLed copy reopens as a prefix of what it took, its position at the prefix's end",
          "[log][crash]") {
  // crash_writer's copy takes source sequence s into stream copy/(s % 4):
  // what any prefix holds follows from s alone.
  auto expected = [](std::uint64_t seq) {
    auto r = seq % 4;  // versions of copy/r are taken at r, r + 4, … (4, 8, … for 0)
    return ack{seq, "copy/" + std::to_string(r), r == 0 ? seq / 4 : (seq - r) / 4 + 1};
  };
  temp_dir dir;
  std::mt19937 rng{std::random_device{}()};
  std::uint64_t kept = 0;
  for (int round = 0; round < 3; ++round) {
    child_process child{{{CRASH_WRITER_BINARY, dir.path().string(), "copy"}}};
    auto ready = child.wait_for_line("ready");
    REQUIRE(ready);
    // A reopen starts where the last one left off: a clean close loses nothing.
    REQUIRE(std::stoull(ready->substr(6)) == kept);
    const auto kill_after = 200 + rng() % 2000;
    for (std::size_t n = 0; n < kill_after; ++n) {
      auto a = next_ack(child);
      auto e = expected(kept + n + 1);
      REQUIRE(a.seq == e.seq);
      REQUIRE(a.stream == e.stream);
      REQUIRE(a.version == e.version);
    }
    child.signal(SIGKILL);
    REQUIRE(child.wait() == 128 + SIGKILL);
    INFO("round " << round << " killed after " << kill_after << " commits");

    auto opened = storage::rocksdb_event_log::open({.dir = dir.path(), .sync = false});
    REQUIRE(opened);
    auto& log = **opened;
    // It may have lost its tail, or kept commits it had no time to report.
    auto before = kept;
    kept = log.last_seq().value;
    CHECK(kept >= before);
    CHECK(log.copy_position() == kept);
    CHECK(log.copy_taken() == kept);
    auto commits = log.read_all({0}, kept + 1);
    REQUIRE(commits);
    REQUIRE(commits->size() == kept);
    for (auto& c : *commits) {
      auto e = expected(c.seq.value);
      REQUIRE(c.body.stream.value == e.stream);
      REQUIRE(c.body.first_version.value == e.version);
      REQUIRE(text_of(c) == crash_payload(e.stream, e.version));
    }
    CHECK(intact_chain(log) == kept);
  }
}
