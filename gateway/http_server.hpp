#pragma once
// An HTTP/1.1 server (keep-alive, per-route body limits, bodies streamed to
// files, chunked streaming responses, timeouts, a connection cap) behind
// plain value types; Boost.Beast stays inside http_server.cpp.
#include "events/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::gateway {

// Where a streamed request body goes as it arrives (an artifact on its
// way to object storage). write() is called on a server thread; a sink
// that cannot take more for now says so with saturated() and calls the
// function given to when_ready() (from any thread) once it can.
class body_sink {
 public:
  virtual ~body_sink() = default;
  // Before the first byte: the Content-Length, when the request has one.
  virtual void begin(std::optional<std::uint64_t> /*length*/) {}
  virtual void write(std::string_view bytes) = 0;
  virtual bool saturated() = 0;
  virtual void when_ready(std::function<void()> resume) = 0;
  // The body did not arrive whole (cut, too large): drop what was sent on.
  virtual void abandon() = 0;
};

struct http_request {
  std::string method;  // "GET", "PUT", …
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;            // unless the body went to a file
  std::filesystem::path body_file;  // set when the body plan named a file
  std::shared_ptr<gateway::body_sink> sink;  // set when the body plan named a sink
  std::uint64_t body_size = 0;

  // The first header of that (lower-case) name, or "".
  std::string_view header(std::string_view name) const;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this file's contents (sent without buffering).
  std::filesystem::path file;
};

// A response whose body is written over time (chunked). Methods may be
// called from any thread.
class body_stream {
 public:
  virtual ~body_stream() = default;
  // Queues bytes; false once the client is gone or the stream has ended.
  virtual bool write(std::string bytes) = 0;
  // Bytes queued and not yet taken by the socket.
  virtual std::size_t pending() const = 0;
  // Blocks until at most `bytes` are pending or the stream is closed; for
  // producers on their own threads (never a server thread).
  virtual void wait_below(std::size_t bytes) = 0;
  // Ends the body (and the connection).
  virtual void finish() = 0;
  virtual bool closed() const = 0;
  // Called once, on a server thread, when the client goes away or the
  // stream ends; not called if it already happened (check closed()).
  virtual void on_close(std::function<void()> f) = 0;
};

// Completes a request exactly once, from any thread: with a whole response,
// or by starting a stream (status and headers from `head`; its body unused).
class responder {
 public:
  struct sink {
    virtual ~sink() = default;
    virtual void send(http_response r) = 0;
    virtual std::shared_ptr<body_stream> stream(http_response head) = 0;
  };
  explicit responder(std::shared_ptr<sink> s) : sink_(std::move(s)) {}
  void operator()(http_response r) const { sink_->send(std::move(r)); }
  std::shared_ptr<body_stream> stream(http_response head) const {
    return sink_->stream(std::move(head));
  }

 private:
  std::shared_ptr<sink> sink_;
};

using request_handler = std::function<void(http_request, responder)>;

// How to take a request's body, decided from its method and target before
// the body is read: at most `limit` bytes, into memory or into `file`.
struct body_plan {
  std::uint64_t limit = 1024 * 1024;
  std::filesystem::path file;       // the body goes to this file...
  std::shared_ptr<body_sink> sink;  // ...or here, as it arrives
};
using body_planner = std::function<body_plan(std::string_view method, std::string_view target)>;

struct http_server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see http_server::port)
  std::size_t max_header_bytes = 16 * 1024;
  // A request must arrive whole within this (slowloris); also how long an
  // idle keep-alive connection is kept.
  std::chrono::seconds request_timeout{30};
  std::size_t max_connections = 1024;  // beyond it: 503 and close
  std::size_t threads = 1;
};

class http_server {
 public:
  // Binds and starts serving. Error code "io" when the address cannot be bound.
  static result<std::unique_ptr<http_server>> start(const http_server_options& opts,
                                                    request_handler handler,
                                                    body_planner planner = {});
  ~http_server();

  std::uint16_t port() const;
  std::size_t open_connections() const;
  // Stops accepting and closes idle connections, at once.
  void stop_accepting();
  // Waits (up to `grace`) for in-flight requests and streams to finish, then
  // closes whatever is left and stops the threads.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds{10});

  struct impl;

 private:
  explicit http_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// {"error": code, "message": message} with the given status.
http_response json_error(int status, std::string_view code, std::string_view message);

} // namespace kiln::gateway
