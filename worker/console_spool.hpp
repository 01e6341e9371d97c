#pragma once
// A run's console on its way to the server: every byte is first appended
// to a file on the worker's disk, and a sender thread posts what the server
// lacks, by offset, at least every 250 ms while output flows. When no
// server answers, bytes wait in the file; a resent offset is harmless
// (the server keeps the first copy), so nothing is lost or doubled.
#include "worker/run_job.hpp"

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <mutex>
#include <thread>

namespace kiln::worker {

enum class send_result { sent, retry, gone };

// Bytes the server does not hold yet, from `offset` on.
struct console_tail {
  std::uint64_t offset = 0;
  std::string bytes;
};

class console_spool final : public console_sink {
 public:
  // `send(offset, bytes)` is called on the spool's own thread.
  using sender = std::function<send_result(std::uint64_t offset, std::string_view bytes)>;
  console_spool(std::filesystem::path file, sender send);
  ~console_spool() override;

  void write(std::string_view bytes) override;
  // Blocks until the server holds every byte (or says the run is gone).
  void close() { finish(0); }
  // Blocks until at most `max_bytes` are unsent and hands those over, so
  // that the caller can send them with its own last request (or until the
  // server says the run is gone: then nothing is handed over).
  console_tail finish(std::size_t max_bytes);

 private:
  void loop();

  std::filesystem::path path_;
  sender send_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t written_ = 0, sent_ = 0, kept_at_close_ = 0;
  bool closing_ = false, gone_ = false, done_ = false;
  std::thread thread_;
};

} // namespace kiln::worker
