// Test helper for crash_test: appends from 4 threads until killed, printing
// "ack <seq> <stream> <version>" for every acknowledged commit. The commit's
// content is a function of (stream, version), so the test can rebuild it.
// `crash_writer DIR copy` copies instead, as a cluster core does: an
// unsynced log taking commits by their source sequence, one thread.
#include "crash_payload.hpp"
#include "events/codec.hpp"
#include "storage/rocksdb_event_log.hpp"

#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

using namespace kiln;
using kiln::test::crash_payload;


namespace {

[[noreturn]] void copy_until_killed(storage::rocksdb_event_log& log) {
  for (auto source = log.copy_position() + 1;; ++source) {
    auto stream = "copy/" + std::to_string(source % 4);
    auto v = log.last_version({stream});
    if (!v)
      std::abort();
    auto version = v->value + 1;
    commit c{{stream}, {version}, {static_cast<std::int64_t>(version), "copy", "", ""},
             {run_completed{status::passed, 0, crash_payload(stream, version)}}};
    auto receipt = log.replicate(source, codec::encode_commit(c));
    if (!receipt)
      std::abort();
    std::printf("ack %llu %s %llu\n", static_cast<unsigned long long>(receipt->seq.value),
                stream.c_str(), static_cast<unsigned long long>(version));
    std::fflush(stdout);
  }
}

} // namespace

int main(int argc, char** argv) {
  bool copy = argc == 3 && std::string{argv[2]} == "copy";
  if (argc != 2 && !copy) {
    std::fprintf(stderr, "usage: crash_writer DIR [copy]\n");
    return 2;
  }
  auto log = storage::rocksdb_event_log::open({.dir = argv[1], .sync = !copy});
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    return 1;
  }
  std::printf("ready %llu\n", static_cast<unsigned long long>((*log)->last_seq().value));
  std::fflush(stdout);
  if (copy)
    copy_until_killed(**log);
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto stream = "crash/" + std::to_string(t);
      auto v = (*log)->last_version({stream});
      std::uint64_t version = v ? v->value : 0;
      for (;;) {
        storage::append_request r;
        r.stream = {stream};
        r.expected = {version};
        r.meta = {static_cast<std::int64_t>(version), "crash", "", ""};
        r.events.push_back(run_completed{status::passed, 0, crash_payload(stream, version + 1)});
        auto receipt = (*log)->append(r);
        if (!receipt)
          std::abort();
        version = receipt->last_version.value;
        std::lock_guard lock{out};
        // One write(2) per line: the parent may kill us at any moment.
        std::printf("ack %llu %s %llu\n", static_cast<unsigned long long>(receipt->seq.value),
                    stream.c_str(), static_cast<unsigned long long>(version));
        std::fflush(stdout);
      }
    });
  for (auto& t : threads)
    t.join();
}
