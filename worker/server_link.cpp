#include "worker/server_link.hpp"

namespace kiln::worker {

server_link::server_link(std::vector<std::string> urls, std::string token, std::string ca_file,
                         long timeout_ms, const std::atomic<bool>* abort)
  : urls_(std::move(urls)) {
  for (auto& u : urls_) {
    while (u.size() > 1 && u.back() == '/')
      u.pop_back();
    clients_.push_back(std::make_unique<client::api_client>(
      client::client_options{u, token, ca_file, timeout_ms, abort}));
  }
}

const std::string& server_link::url() const { return urls_[current_]; }

template <class F>
result<client::http_response> server_link::each_url(F&& f) {
  std::string tried;
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    auto at = (current_ + i) % clients_.size();
    auto r = f(*clients_[at]);
    // A gateway that is draining answers 503: try the next one too.
    if (r && r->status != 503) {
      current_ = at;
      return r;
    }
    tried += (tried.empty() ? "" : "; ") + (r ? urls_[at] + ": HTTP 503" : r.error().message);
  }
  current_ = (current_ + 1) % clients_.size();
  return error{"unreachable", tried};
}

result<client::http_response> server_link::request(std::string_view method,
                                                    std::string_view target,
                                                    std::string_view body,
                                                    std::string_view content_type) {
  return each_url([&](client::api_client& c) { return c.request(method, target, body, content_type); });
}

result<client::http_response> server_link::upload(std::string_view target,
                                                   const std::string& file) {
  return each_url([&](client::api_client& c) { return c.upload_file("PUT", target, file); });
}

std::string percent_encode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string run_target(const std::string& project, std::uint32_t build, const std::string& run) {
  return "/v1/runs/" + percent_encode(project) + "/" + std::to_string(build) + "/"
         + percent_encode(run);
}

} // namespace kiln::worker
