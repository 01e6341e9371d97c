#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kiln::test {

std::string dechunk(std::string_view raw) {
  std::string out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    auto eol = raw.find("\r\n", pos);
    if (eol == std::string_view::npos)
      break;
    auto size = std::stoul(std::string{raw.substr(pos, eol - pos)}, nullptr, 16);
    if (size == 0)
      break;
    out.append(raw.substr(eol + 2, size));
    pos = eol + 2 + size + 2;
  }
  return out;
}

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

http_reply http_request(const std::string& host, std::uint16_t port, const std::string& method,
                        const std::string& target, const std::string& body,
                        std::map<std::string, std::string> headers,
                        std::chrono::milliseconds timeout) {
  http_reply reply;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return reply;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return reply;
  }
  headers.emplace("Host", host + ":" + std::to_string(port));
  headers.emplace("Connection", "close");
  if (!body.empty() || method == "PUT" || method == "POST")
    headers.emplace("Content-Length", std::to_string(body.size()));
  std::string req = method + " " + target + " HTTP/1.1\r\n";
  for (auto& [k, v] : headers)
    req += k + ": " + v + "\r\n";
  req += "\r\n" + body;
  for (std::size_t sent = 0; sent < req.size();) {
    auto n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
      break;
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0)
    return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  std::size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    auto eol = raw.find("\r\n", pos);
    auto line = raw.substr(pos, eol - pos);
    if (auto colon = line.find(':'); colon != std::string::npos) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ')
        v.erase(0, 1);
      reply.headers[lower(line.substr(0, colon))] = v;
    }
    pos = eol + 2;
  }
  reply.body = raw.substr(head_end + 4);
  if (reply.headers["transfer-encoding"] == "chunked")
    reply.body = dechunk(reply.body);
  return reply;
}

} // namespace kiln::test

namespace kiln::test {

http_stream::http_stream(std::uint16_t port, const std::string& target,
                         std::map<std::string, std::string> headers) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    eof_ = true;
    return;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (auto& [k, v] : headers)
    req += k + ": " + v + "\r\n";
  req += "\r\n";
  send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
}

http_stream::~http_stream() { close(); }

void http_stream::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

bool http_stream::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  static thread_local char buf[1 << 16];
  // Only new bytes can complete the needle: search from just before them.
  std::size_t from = 0;
  while (raw_.find(needle, from) == std::string::npos) {
    from = raw_.size() > needle.size() ? raw_.size() - needle.size() : 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (eof_ || fd_ < 0 || left.count() <= 0)
      return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    auto n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    raw_.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

bool http_stream::read_to_end(std::chrono::milliseconds timeout) {
  read_until(std::string(1, '\0') + "never", timeout);
  return eof_;
}

std::string http_stream::body() const {
  auto head_end = raw_.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return {};
  return dechunk(std::string_view{raw_}.substr(head_end + 4));
}

} // namespace kiln::test
