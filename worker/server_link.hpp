#pragma once
// The worker's way to the server: several gateway URLs (--server a,b,c),
// tried in turn. A request that finds no gateway answering comes back as
// "unreachable"; the caller decides whether to wait and try again.
#include "gateway/api_client.hpp"

#include <memory>
#include <string>
#include <vector>

namespace kiln::worker {

class server_link {
 public:
  // Not thread-safe (one per thread), like api_client. A trailing '/' of
  // a URL is dropped.
  server_link(std::vector<std::string> urls, std::string token, std::string ca_file,
              long timeout_ms = 30'000, const std::atomic<bool>* abort = nullptr);

  result<client::http_response> request(std::string_view method, std::string_view target,
                                        std::string_view body = {},
                                        std::string_view content_type = "application/json");
  result<client::http_response> upload(std::string_view target, const std::string& file);

  const std::string& url() const;  // the one that answered last

 private:
  template <class F>
  result<client::http_response> each_url(F&& f);

  std::vector<std::string> urls_;
  std::vector<std::unique_ptr<client::api_client>> clients_;
  std::size_t current_ = 0;
};

// "/v1/runs/p/1/r": each part percent-encoded.
std::string run_target(const std::string& project, std::uint32_t build, const std::string& run);
std::string percent_encode(std::string_view s, bool keep_slash = false);

} // namespace kiln::worker
