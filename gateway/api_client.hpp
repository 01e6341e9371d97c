#pragma once
// The client side of the HTTP API (docs/api.md): one keep-alive connection
// to a gateway, used by the CLI's client commands, the benchmarks and the
// worker. libcurl stays in the .cpp.
#include "events/result.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::client {

struct client_options {
  std::string base_url;  // "http://127.0.0.1:8080", no trailing slash
  std::string token;     // sent as a bearer token when not empty
  std::string ca_file;   // extra trust for a self-signed gateway (https)
  long timeout_ms = 30'000;
  // When set and it turns true, a request under way is abandoned
  // ("unreachable"): a worker cuts its long poll short to drain.
  const std::atomic<bool>* abort = nullptr;
};

struct http_response {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Not thread-safe: one per thread. Reuses its connection across requests.
class api_client {
 public:
  explicit api_client(client_options options);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  // Any answer is a value (a 404 too); an error means no answer: the
  // server unreachable, a timeout, a cut connection (code "unreachable").
  result<http_response> request(std::string_view method, std::string_view target,
                                std::string_view body = {},
                                std::string_view content_type = "application/json");

  // The file's bytes as the body, streamed from disk (never all in memory).
  result<http_response> upload_file(std::string_view method, std::string_view target,
                                    const std::string& file,
                                    std::string_view content_type = "application/octet-stream");

  const client_options& options() const;

 private:
  result<http_response> perform(std::string_view method, std::string_view target,
                                std::string_view content_type,
                                const std::function<void(void*)>& set_body);
  struct impl;
  std::unique_ptr<impl> impl_;
};

// A non-2xx answer as an error: the API's {"error","message"} when the body
// has them, else the status.
kiln::error api_error(const http_response& r);

} // namespace kiln::client
