#pragma once
// An HTTP/1.1 server (keep-alive, header and body limits, request timeouts)
// behind plain value types; Boost.Beast stays inside http_server.cpp.
#include "events/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln::gateway {

struct http_request {
  std::string method;  // "GET", "PUT", …
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // The first header of that (lower-case) name, or "".
  std::string_view header(std::string_view name) const;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Completes a request exactly once, from any thread.
using responder = std::function<void(http_response)>;
using request_handler = std::function<void(http_request, responder)>;

struct http_server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see http_server::port)
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::seconds request_timeout{30};
  std::size_t threads = 1;
};

class http_server {
 public:
  // Binds and starts serving. Error code "io" when the address cannot be bound.
  static result<std::unique_ptr<http_server>> start(const http_server_options& opts,
                                                    request_handler handler);
  ~http_server();

  std::uint16_t port() const;
  // Stops accepting; lets in-flight requests finish; returns when all are done.
  void stop();

  struct impl;

 private:
  explicit http_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// {"error": code, "message": message} with the given status.
http_response json_error(int status, std::string_view code, std::string_view message);

} // namespace kiln::gateway
