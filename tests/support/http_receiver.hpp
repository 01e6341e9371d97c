#pragma once
// A loopback HTTP server that records what it is sent (webhook deliveries,
// commit statuses, a git client's credentials) and answers every request
// with the status it is told.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
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

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void answer_with(int status) { status_ = status; }
  std::vector<received_request> requests() const;

 private:
  void serve();
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> status_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<received_request> requests_;
  std::thread thread_;
};

} // namespace kiln::test
