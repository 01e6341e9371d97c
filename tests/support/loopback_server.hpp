#pragma once
// A TCP server on a free loopback port that hands each connection, one at
// a time, to `session` on its own thread (which closes it after); stops
// when destroyed. What the tests' fake HTTP and SMTP servers stand on.
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

namespace kiln::test {

class loopback_server {
 public:
  explicit loopback_server(std::function<void(int fd)> session);
  ~loopback_server();
  loopback_server(const loopback_server&) = delete;
  loopback_server& operator=(const loopback_server&) = delete;

  std::uint16_t port() const { return port_; }
  bool stopping() const { return stopping_; }

 private:
  void serve();
  std::function<void(int)> session_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace kiln::test
