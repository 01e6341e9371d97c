#pragma once
// A minimal blocking HTTP/1.1 client over a real loopback socket: one
// request per connection, enough to test the gateway from outside.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace kiln::test {

struct http_reply {
  int status = 0;  // 0: no answer
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

http_reply http_request(const std::string& host, std::uint16_t port, const std::string& method,
                        const std::string& target, const std::string& body = {},
                        std::map<std::string, std::string> headers = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

} // namespace kiln::test
