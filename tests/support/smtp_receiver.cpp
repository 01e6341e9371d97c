#include "support/smtp_receiver.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace kiln::test {

namespace {

// "MAIL FROM:<a@b> SIZE=10" -> "a@b"
std::string address_in(const std::string& line) {
  auto open = line.find('<'), close = line.find('>');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return {};
  return line.substr(open + 1, close - open - 1);
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

} // namespace

smtp_receiver::smtp_receiver() = default;

smtp_receiver::~smtp_receiver() = default;

std::vector<std::string> smtp_receiver::refused() const {
  std::lock_guard lock{mu_};
  return refused_;
}

std::vector<received_mail> smtp_receiver::mails() const {
  std::lock_guard lock{mu_};
  return mails_;
}

void smtp_receiver::session(int fd) {
  auto say = [fd](const std::string& line) {
    auto out = line + "\r\n";
    return ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  };
  std::string in;
  // The next CRLF-ended line, or false when the client is gone.
  auto next_line = [&](std::string& line) {
    for (;;) {
      if (auto eol = in.find("\r\n"); eol != std::string::npos) {
        line = in.substr(0, eol);
        in.erase(0, eol + 2);
        return true;
      }
      pollfd q{fd, POLLIN, 0};
      if (server_.stopping() || ::poll(&q, 1, 5000) <= 0)
        return false;
      char buf[4096];
      auto n = ::read(fd, buf, sizeof buf);
      if (n <= 0)
        return false;
      in.append(buf, static_cast<std::size_t>(n));
    }
  };
  if (!say("220 kiln-test ESMTP"))
    return;
  received_mail mail;
  std::string line;
  while (next_line(line)) {
    auto verb = upper(line.substr(0, line.find(' ')));
    auto head = upper(line.substr(0, 10));
    if (verb == "EHLO" || verb == "HELO") {
      say("250 kiln-test");
    } else if (head.starts_with("MAIL FROM:")) {
      mail = {};
      mail.from = address_in(line);
      say("250 ok");
    } else if (head.starts_with("RCPT TO:")) {
      mail.to.push_back(address_in(line));
      say("250 ok");
    } else if (verb == "DATA") {
      say("354 end with <CRLF>.<CRLF>");
      std::string text;
      bool ended = false;
      while (next_line(line)) {
        if (line == ".") {
          ended = true;
          break;
        }
        text += (line.starts_with("..") ? line.substr(1) : line) + "\r\n";
      }
      if (!ended)
        return;
      mail.message = std::move(text);
      {
        std::lock_guard lock{mu_};
        mails_.push_back(mail);
      }
      say("250 queued");
    } else if (verb == "RSET" || verb == "NOOP") {
      say("250 ok");
    } else if (verb == "QUIT") {
      say("221 bye");
      return;
    } else {
      // RFC 5321's refusal for a command a server does not implement; the
      // command is kept so that a test can say which one it was.
      {
        std::lock_guard lock{mu_};
        refused_.push_back(line);
      }
      say("502 5.5.1 " + verb + " is refused by this test server");
    }
  }
}

} // namespace kiln::test
