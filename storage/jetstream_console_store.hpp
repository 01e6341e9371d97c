#pragma once
// The cluster's consoles (issue 6): a run's console chunks go through a
// JetStream stream over kiln.con.> (message id run@offset+length, so a
// chunk resent to another core is not stored twice), and every core copies
// that stream, in order, into its own console store, from which it reads.
// Every copy applies the same chunks in the same order with the store's
// offset rules (bytes already held skipped, a gap refused), so every core
// holds the same console and gives the same answer; an append returns what
// this core's copy made of it. A run's console stays in each copy after
// the stream forgets it (--console-retention-hours): the copy is the run's
// stored console. nats.h stays in the .cpp.
#include "storage/console_store.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::storage {

struct jetstream_console_options {
  std::vector<std::string> servers;
  std::string name = "kiln-core-console";
  std::string stream = "KILN_CONSOLE";
  int replicas = 1;
  std::chrono::hours max_age{24};
  std::chrono::milliseconds ack_timeout{5000};
  // Where the copy notes how far it came (replaying from there is harmless).
  std::filesystem::path position_file;
};

class jetstream_console_store final : public console_store {
 public:
  static result<std::unique_ptr<jetstream_console_store>> open(console_store& local,
                                                               jetstream_console_options options);
  ~jetstream_console_store() override;

  // Waits for the append (off NATS's delivery thread only).
  result<console_append> append_console(const std::string& run, std::uint64_t offset,
                                        std::string_view bytes) override;
  void append_console_async(const std::string& run, std::uint64_t offset, std::string_view bytes,
                            console_callback done) override;
  result<std::string> read_console(const std::string& run, std::uint64_t offset,
                                   std::size_t max) override;
  result<std::uint64_t> console_size(const std::string& run) override;

  struct impl;

 private:
  explicit jetstream_console_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::storage
