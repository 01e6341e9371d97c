#pragma once
// A loopback SMTP server that records the mails it is sent (envelope and
// message), one connection at a time; enough of RFC 5321 for libcurl.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::test {

struct received_mail {
  std::string from;             // MAIL FROM, without the angle brackets
  std::vector<std::string> to;  // RCPT TO, likewise
  std::string message;          // the DATA, dot-stuffing undone, CRLF kept
};

class smtp_receiver {
 public:
  smtp_receiver();
  ~smtp_receiver();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  std::vector<received_mail> mails() const;

 private:
  void serve();
  void session(int fd);
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<received_mail> mails_;
  std::thread thread_;
};

} // namespace kiln::test
