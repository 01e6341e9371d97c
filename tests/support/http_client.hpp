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

// The body of a chunked response, without its framing (stops at a cut).
std::string dechunk(std::string_view raw);

// A request whose response is read a bit at a time (streams), over its own
// connection; closing it is the client going away.
class http_stream {
 public:
  http_stream(std::uint16_t port, const std::string& target,
              std::map<std::string, std::string> headers);
  ~http_stream();
  // Reads until the raw response holds `needle` (true) or the time is up,
  // or the server closed (false).
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Reads until the server closes; true if it did in time.
  bool read_to_end(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  const std::string& raw() const { return raw_; }
  std::string body() const;  // dechunked, so far
  void close();

 private:
  int fd_ = -1;
  std::string raw_;
  bool eof_ = false;
};

http_reply http_request(const std::string& host, std::uint16_t port, const std::string& method,
                        const std::string& target, const std::string& body = {},
                        std::map<std::string, std::string> headers = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

} // namespace kiln::test
