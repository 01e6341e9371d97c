#include "support/http_receiver.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace kiln::test {

http_receiver::http_receiver(int status) : status_(status) {}

http_receiver::~http_receiver() = default;

std::vector<received_request> http_receiver::requests() const {
  std::lock_guard lock{mu_};
  return requests_;
}

// One request per connection (answered with Connection: close).
void http_receiver::session(int fd) {
  std::string in;
  char buf[8192];
  std::size_t head_end = std::string::npos, need = 0;
  for (;;) {
    pollfd q{fd, POLLIN, 0};
    if (::poll(&q, 1, 5000) <= 0)
      break;
    auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    in.append(buf, static_cast<std::size_t>(n));
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      auto lower = in.substr(0, head_end);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto cl = lower.find("content-length:");
      need = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15));
    }
    if (head_end != std::string::npos && in.size() >= head_end + 4 + need)
      break;
  }
  if (head_end != std::string::npos) {
    received_request r;
    auto line_end = in.find("\r\n");
    auto first = in.substr(0, line_end);
    auto sp1 = first.find(' '), sp2 = first.rfind(' ');
    r.method = first.substr(0, sp1);
    r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t at = line_end + 2;
    while (at < head_end) {
      auto e = in.find("\r\n", at);
      auto line = in.substr(at, e - at);
      at = e + 2;
      auto colon = line.find(':');
      if (colon == std::string::npos)
        continue;
      auto name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    r.body = in.substr(head_end + 4, need);
    {
      std::lock_guard lock{mu_};
      requests_.push_back(std::move(r));
    }
    auto status = status_.load();
    auto reply = "HTTP/1.1 " + std::to_string(status) + " Status\r\nContent-Length: 2\r\n"
                 "Content-Type: application/json\r\nConnection: close\r\n\r\n{}";
    [[maybe_unused]] auto w = ::write(fd, reply.data(), reply.size());
  }
}

} // namespace kiln::test
