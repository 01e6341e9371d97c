#include "worker/console_spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace kiln::worker {

namespace {
constexpr std::uint64_t max_chunk = 1 << 20;
constexpr auto flush_every = std::chrono::milliseconds{250};
}

console_spool::console_spool(std::filesystem::path file, sender send)
  : path_(std::move(file)), send_(std::move(send)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw std::runtime_error("cannot create " + path_.string());
  thread_ = std::thread{[this] { loop(); }};
}

console_spool::~console_spool() {
  {
    std::lock_guard lock{mu_};
    closing_ = true;
    gone_ = true;  // destroyed without close(): stop trying
  }
  cv_.notify_all();
  thread_.join();
  ::close(fd_);
}

void console_spool::write(std::string_view bytes) {
  std::lock_guard lock{mu_};
  auto off = static_cast<off_t>(written_);
  while (!bytes.empty()) {
    auto n = ::pwrite(fd_, bytes.data(), bytes.size(), off);
    if (n <= 0)
      throw std::runtime_error("cannot write " + path_.string());
    bytes.remove_prefix(static_cast<std::size_t>(n));
    off += n;
  }
  written_ = static_cast<std::uint64_t>(off);
  cv_.notify_all();
}

console_tail console_spool::finish(std::size_t max_bytes) {
  console_tail tail;
  {
    std::unique_lock lock{mu_};
    kept_at_close_ = max_bytes;
    closing_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return done_; });
    if (gone_ || written_ == sent_)
      return tail;
    tail.offset = sent_;
    tail.bytes.resize(written_ - sent_);
  }
  auto n = ::pread(fd_, tail.bytes.data(), tail.bytes.size(), static_cast<off_t>(tail.offset));
  if (n != static_cast<ssize_t>(tail.bytes.size()))
    throw std::runtime_error("cannot read " + path_.string());
  return tail;
}

void console_spool::loop() {
  auto retry_wait = std::chrono::milliseconds{200};
  std::string chunk;
  for (;;) {
    std::uint64_t from = 0, to = 0;
    {
      std::unique_lock lock{mu_};
      cv_.wait(lock, [this] { return written_ > sent_ || closing_ || gone_; });
      // Output gathers for up to 250 ms before it is sent: a short run's
      // whole console goes in one request, a long one's every 250 ms.
      cv_.wait_for(lock, flush_every,
                   [this] { return closing_ || gone_ || written_ - sent_ >= max_chunk / 4; });
      if (gone_ || (closing_ && written_ - sent_ <= kept_at_close_)) {
        done_ = true;
        cv_.notify_all();
        return;
      }
      from = sent_;
      to = std::min(written_, sent_ + max_chunk);
    }
    chunk.resize(to - from);
    auto n = ::pread(fd_, chunk.data(), chunk.size(), static_cast<off_t>(from));
    chunk.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    auto r = send_(from, chunk);
    std::unique_lock lock{mu_};
    if (r == send_result::sent) {
      sent_ = from + chunk.size();
      retry_wait = std::chrono::milliseconds{200};
    } else if (r == send_result::gone) {
      gone_ = true;
    } else {
      cv_.wait_for(lock, retry_wait, [this] { return gone_; });
      retry_wait = std::min(retry_wait * 2, std::chrono::milliseconds{2000});
    }
  }
}

} // namespace kiln::worker
