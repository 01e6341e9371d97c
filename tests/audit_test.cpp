// Tamper evidence: the chain verifier names the first bad commit, and
// `kiln audit verify` finds a byte flipped on disk.
#include "events/codec.hpp"
#include "log_fixture.hpp"
#include "storage/audit.hpp"
#include "storage/hash_chain.hpp"
#include "support/process.hpp"

#include <csignal>
#include <fstream>
#include <map>
#include <iterator>

using namespace kiln;
using namespace kiln::test;

namespace {

// A well-formed chain of n records, as the log would store them.
std::vector<std::string> make_chain(int n) {
  std::vector<std::string> out;
  digest prev = storage::genesis_hash;
  for (int i = 1; i <= n; ++i) {
    commit c{{"s"}, {static_cast<std::uint64_t>(i)}, {}, {run_completed{status::passed, 0, "x"}}};
    auto bytes = codec::encode_commit(c);
    auto h = storage::chain_hash(prev, global_seq{static_cast<std::uint64_t>(i)}, bytes);
    out.push_back(codec::encode_record(global_seq{static_cast<std::uint64_t>(i)}, prev, h, bytes));
    prev = h;
  }
  return out;
}

storage::audit_report verify(const std::vector<std::string>& records,
                             const std::vector<std::uint64_t>& keys = {}) {
  storage::chain_verifier v;
  for (std::size_t i = 0; i < records.size(); ++i)
    if (!v.feed(keys.empty() ? i + 1 : keys[i], records[i]))
      break;
  return v.report();
}

} // namespace

TEST_CASE("the chain verifier accepts an intact chain", "[audit]") {
  auto r = verify(make_chain(5));
  CHECK(r.intact());
  CHECK(r.commits_checked == 5);
}

TEST_CASE("the chain verifier names the first bad commit", "[audit]") {
  auto chain = make_chain(6);
  SECTION("a changed byte in a commit") {
    auto& rec = chain[3];
    auto pos = rec.rfind('x');
    REQUIRE(pos != std::string::npos);
    rec[pos] = 'y';
    auto r = verify(chain);
    REQUIRE(r.first_bad);
    CHECK(r.first_bad->value == 4);
    CHECK(r.reason.find("hash mismatch") != std::string::npos);
  }
  SECTION("a commit replaced by a validly hashed one breaks the next link") {
    commit forged{{"s"}, {3}, {}, {run_completed{status::failed, 1, "forged"}}};
    auto bytes = codec::encode_commit(forged);
    auto prev = codec::decode_record(chain[1])->hash;
    chain[2] = codec::encode_record(global_seq{3}, prev,
                                    storage::chain_hash(prev, global_seq{3}, bytes), bytes);
    auto r = verify(chain);
    REQUIRE(r.first_bad);
    CHECK(r.first_bad->value == 4);
    CHECK(r.reason.find("prev_hash") != std::string::npos);
  }
  SECTION("a missing commit") {
    chain.erase(chain.begin() + 2);
    auto r = verify(chain, {1, 2, 4, 5, 6});
    REQUIRE(r.first_bad);
    CHECK(r.first_bad->value == 3);
  }
  SECTION("garbage where a record should be") {
    chain[0] = "not a record at all";
    auto r = verify(chain);
    REQUIRE(r.first_bad);
    CHECK(r.first_bad->value == 1);
  }
}

TEST_CASE("kiln audit verify finds a byte flipped on disk", "[audit][cli]") {
  temp_dir dir;
  const auto log_dir = dir / "log";
  constexpr int total = 40;
  constexpr int target = 23;
  {
    auto log = open_log(log_dir);
    std::map<std::string, std::uint64_t> versions;
    for (int i = 1; i <= total; ++i) {
      auto stream = "audit/s" + std::to_string(i % 3);
      REQUIRE(log->append(note(stream, versions[stream]++,
                               "payload-" + std::to_string(i) + (i == target ? "-MARKER" : ""))));
    }
  }
  auto [ok_status, ok_out] = run({KILN_BINARY, "audit", "verify", "--data", dir.path().string()});
  INFO(ok_out);
  REQUIRE(ok_status == 0);
  CHECK(ok_out.find("intact commits=40") != std::string::npos);

  // Closing flushed the records into SST files; find the marked commit there.
  bool flipped = false;
  for (auto& f : std::filesystem::directory_iterator(log_dir)) {
    if (f.path().extension() != ".sst")
      continue;
    std::fstream file{f.path(), std::ios::in | std::ios::out | std::ios::binary};
    std::string bytes{std::istreambuf_iterator<char>(file), {}};
    auto pos = bytes.find("-MARKER");
    if (pos == std::string::npos)
      continue;
    file.seekp(static_cast<std::streamoff>(pos + 1));
    file.put('m');
    flipped = true;
  }
  REQUIRE(flipped);

  auto [bad_status, bad_out] = run({KILN_BINARY, "audit", "verify", "--data", dir.path().string()});
  INFO(bad_out);
  CHECK(bad_status == 1);
  CHECK(bad_out.find("first_bad_seq=" + std::to_string(target)) != std::string::npos);
}

TEST_CASE("kiln audit verify and kiln events work beside a running writer", "[audit][cli]") {
  temp_dir dir;
  auto log = open_log(dir / "log");
  for (int i = 0; i < 5; ++i)
    REQUIRE(log->append(note("live", i, "line " + std::to_string(i))));
  auto [status, out] = run({KILN_BINARY, "audit", "verify", "--data", dir.path().string()});
  INFO(out);
  CHECK(status == 0);
  CHECK(out.find("intact commits=5") != std::string::npos);

  auto [ev_status, ev_out] =
    run({KILN_BINARY, "events", "--data", dir.path().string(), "--after", "3"});
  INFO(ev_out);
  CHECK(ev_status == 0);
  CHECK(ev_out.find("\"seq\":3") == std::string::npos);
  CHECK(ev_out.find("\"seq\":4") != std::string::npos);
  CHECK(ev_out.find("\"message\":\"line 4\"") != std::string::npos);
}

TEST_CASE("kiln events --follow prints commits as they are appended", "[audit][cli]") {
  temp_dir dir;
  auto log = open_log(dir / "log");
  REQUIRE(log->append(note("f", 0, "first")));
  child_process follower{{{KILN_BINARY, "events", "--data", dir.path().string(), "--follow"}}};
  REQUIRE(follower.wait_for_line("\"message\":\"first\""));
  REQUIRE(log->append(note("f", 1, "second")));
  REQUIRE(follower.wait_for_line("\"message\":\"second\""));
  follower.signal(SIGTERM);
  CHECK(follower.wait() == 0);
}

TEST_CASE("kiln audit and events refuse a missing data dir clearly", "[audit][cli]") {
  temp_dir dir;
  auto [status, out] = run({KILN_BINARY, "audit", "verify", "--data", (dir / "none").string()});
  CHECK(status == 2);
  CHECK(out.find("no event log") != std::string::npos);
  auto [ustatus, uout] = run({KILN_BINARY, "audit", "verify"});
  CHECK(ustatus == 2);
  CHECK(uout.find("--data DIR is required") != std::string::npos);
}
