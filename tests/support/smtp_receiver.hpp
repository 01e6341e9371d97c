#pragma once
// A loopback SMTP server that records the mails it is sent (envelope and
// message), one connection at a time; enough of RFC 5321 for libcurl.
#include "support/loopback_server.hpp"

#include <cstdint>
#include <mutex>
#include <string>
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

  std::uint16_t port() const { return server_.port(); }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port()); }
  std::vector<received_mail> mails() const;
  // Commands it does not implement (AUTH, STARTTLS, VRFY…), as sent: each
  // was refused with 502, so a test that expects mail checks this is empty.
  std::vector<std::string> refused() const;

 private:
  void session(int fd);
  mutable std::mutex mu_;
  std::vector<received_mail> mails_;
  std::vector<std::string> refused_;
  loopback_server server_{[this](int fd) { session(fd); }};  // last: serves once the rest is ready
};

} // namespace kiln::test
