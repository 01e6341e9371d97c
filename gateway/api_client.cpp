#include "gateway/api_client.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/stat.h>

namespace kiln::client {

namespace {

// curl_global_init is not thread-safe; every client passes here first.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// libcurl calls this about once a second while idle, and more often while
// bytes move; non-zero abandons the transfer.
int abort_when_asked(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

} // namespace

struct api_client::impl {
  client_options options;
  CURL* curl = nullptr;
  std::string error_text = std::string(CURL_ERROR_SIZE, '\0');
};

api_client::api_client(client_options options) : impl_{std::make_unique<impl>()} {
  global_init();
  impl_->options = std::move(options);
  impl_->curl = curl_easy_init();
  if (!impl_->curl)
    throw std::runtime_error("curl_easy_init failed");
}

api_client::~api_client() { curl_easy_cleanup(impl_->curl); }

const client_options& api_client::options() const { return impl_->options; }

result<http_response> api_client::request(std::string_view method, std::string_view target,
                                          std::string_view body,
                                          std::string_view content_type) {
  bool with_body = !body.empty() || method == "POST" || method == "PUT";
  return perform(method, target, with_body ? content_type : std::string_view{}, [&](CURL* c) {
    if (with_body) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  });
}

result<http_response> api_client::upload_file(std::string_view method, std::string_view target,
                                              const std::string& file,
                                              std::string_view content_type) {
  std::FILE* in = std::fopen(file.c_str(), "rb");
  if (!in)
    return kiln::error{"io", "cannot read " + file + ": " + std::strerror(errno)};
  struct stat st{};
  ::fstat(::fileno(in), &st);
  auto out = perform(method, target, content_type, [&](CURL* c) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, in);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
  });
  std::fclose(in);
  return out;
}

result<http_response> api_client::perform(std::string_view method, std::string_view target,
                                          std::string_view content_type,
                                          const std::function<void(void*)>& set_body) {
  CURL* c = impl_->curl;
  const auto& o = impl_->options;
  curl_easy_reset(c);  // keeps the connection cache
  std::string url = o.base_url + std::string{target};
  http_response out;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o.timeout_ms);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->error_text.data());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  if (!o.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  if (method == "HEAD")
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (o.abort) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, o.abort);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &abort_when_asked);
  }
  set_body(c);
  // After the body options: CURLOPT_UPLOAD would otherwise make it a PUT.
  std::string method_s{method};
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_s.c_str());

  curl_slist* headers = nullptr;
  // libcurl would add "Expect: 100-continue" to large bodies: a round trip
  // the gateway does not need.
  headers = curl_slist_append(headers, "Expect:");
  std::string auth;
  if (!o.token.empty()) {
    auth = "Authorization: Bearer " + o.token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::string type;
  if (!content_type.empty()) {
    type = "Content-Type: " + std::string{content_type};
    headers = curl_slist_append(headers, type.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  impl_->error_text[0] = '\0';
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    std::string detail = impl_->error_text.c_str();
    if (detail.empty())
      detail = curl_easy_strerror(rc);
    return kiln::error{"unreachable", o.base_url + ": " + detail};
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  out.status = static_cast<int>(status);
  const char* ct = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
    out.content_type = ct;
  return out;
}

kiln::error api_error(const http_response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    return {j["error"].get<std::string>(), j.value("message", std::string{})};
  return {"http_" + std::to_string(r.status), "HTTP " + std::to_string(r.status)};
}

} // namespace kiln::client
