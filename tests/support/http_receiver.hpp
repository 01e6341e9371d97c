#pragma once
// A loopback HTTP server that records what it is sent (webhook deliveries,
// commit statuses, a git client's credentials) and answers every request
// with the status it is told.
#include "support/loopback_server.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::test {

struct received_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
};

class http_receiver {
 public:
  explicit http_receiver(int status = 200);
  ~http_receiver();

  std::uint16_t port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  void answer_with(int status) { status_ = status; }
  std::vector<received_request> requests() const;

 private:
  void session(int fd);
  std::atomic<int> status_;
  mutable std::mutex mu_;
  std::vector<received_request> requests_;
  loopback_server server_{[this](int fd) { session(fd); }};  // last: serves once the rest is ready
};

} // namespace kiln::test
