#pragma once
// The gateway: the HTTP API of ../docs/api.md over the bus. It keeps no
// state of its own (the core holds it all), so any number of gateways can
// serve one cluster and be rolled while jobs run.
#include "gateway/http_server.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace kiln::bus {
class bus;
}

namespace kiln::gateway {

class artifact_store;

struct gateway_options {
  bool public_read = false;           // GETs without a token (never secrets)
  std::filesystem::path artifacts;    // the local artifact store
  std::shared_ptr<artifact_store> store;  // another (S3); takes precedence
  std::uint64_t max_definition_bytes = 1024 * 1024;
  std::uint64_t max_console_chunk = 1024 * 1024;
  std::uint64_t max_artifact_bytes = 1024ull * 1024 * 1024;
  std::uint64_t max_json_bytes = 1024 * 1024;
  std::uint64_t max_secret_bytes = 64 * 1024;
  std::chrono::milliseconds core_timeout{std::chrono::seconds{15}};
  std::chrono::milliseconds heartbeat{std::chrono::seconds{15}};
  // A console follow that heard nothing this long reads again.
  std::chrono::milliseconds follow_recheck{std::chrono::seconds{5}};
  std::chrono::seconds max_long_poll{60};
  // A stream whose client has this many bytes unread is cut off (it
  // resumes from its last id).
  std::size_t stream_buffer_bytes = 4 * 1024 * 1024;
  std::size_t max_streams = 2000;  // beyond: 429
  // How long a token's check is trusted before the core is asked again.
  std::chrono::milliseconds auth_cache{std::chrono::seconds{2}};
};

class gateway {
 public:
  // `b` must outlive the gateway.
  gateway(bus::bus& b, gateway_options opts);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  void handle(http_request req, responder respond);
  body_plan plan(std::string_view method, std::string_view target);

  // SIGTERM: /readyz turns 503, long polls return empty, streams end with a
  // final event telling the client to reconnect elsewhere.
  void drain();
  bool draining() const;
  std::size_t open_streams() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::gateway
