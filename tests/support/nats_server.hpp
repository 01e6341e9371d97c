#pragma once
// A private nats-server (Debian's) on a free loopback port, with JetStream
// and its store in a temp dir; stopped when destroyed.
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::test {

class nats_server {
 public:
  nats_server();
  ~nats_server();
  // SIGKILL, as a crash would.
  void kill();
  // Starts again on the same port and store.
  void start_again();
  // SIGSTOP / SIGCONT: connections stay open and nothing is answered.
  void pause();
  void resume();
  std::uint16_t port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  void start(const std::string& port);
  temp_dir dir_{"kiln-nats"};
  std::unique_ptr<child_process> proc_;
  std::uint16_t port_ = 0;
};

} // namespace kiln::test
