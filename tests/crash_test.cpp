// Crash safety with a real process: a child appends in a loop and reports
// each acknowledged commit; it is SIGKILLed at a random moment. Reopened,
// the log holds every acknowledged commit byte for byte and its chain
// verifies; appends then carry on.
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

} // namespace

TEST_CASE("SIGKILL at a random moment loses no acknowledged commit", "[log][crash]") {
  temp_dir dir;
  std::mt19937 rng{std::random_device{}()};
  std::vector<ack> acks;
  for (int round = 0; round < 3; ++round) {
    child_process child{{{CRASH_WRITER_BINARY, dir.path().string()}}};
    REQUIRE(child.wait_for_line("ready"));
    const auto kill_after = 50 + rng() % 400;
    for (std::size_t n = 0; n < kill_after; ++n) {
      auto line = child.read_line();
      REQUIRE(line);
      std::istringstream in{*line};
      std::string word;
      ack a;
      in >> word >> a.seq >> a.stream >> a.version;
      REQUIRE(word == "ack");
      acks.push_back(a);
    }
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
    storage::chain_verifier verifier;
    REQUIRE(log->scan_records({0}, true, [&](std::uint64_t seq, std::string_view bytes) {
      return verifier.feed(seq, bytes);
    }));
    INFO(verifier.report().reason);
    REQUIRE(verifier.report().intact());
    CHECK(verifier.report().commits_checked >= acks.size());
  }
}
