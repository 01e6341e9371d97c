#include "storage/s3_client.hpp"

#include "events/sha256.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

namespace kiln::storage {

namespace {

std::string unix_date() {
  return amz_date(static_cast<long long>(std::time(nullptr)));
}

// The text of the first <tag>...</tag> in `xml` ("" when none).
std::string xml_text(std::string_view xml, const std::string& tag, std::size_t from = 0,
                     std::size_t* end = nullptr) {
  auto open = xml.find("<" + tag + ">", from);
  if (open == std::string_view::npos)
    return {};
  auto start = open + tag.size() + 2;
  auto close = xml.find("</" + tag + ">", start);
  if (close == std::string_view::npos)
    return {};
  if (end)
    *end = close + tag.size() + 3;
  std::string out{xml.substr(start, close - start)};
  // The few entities S3 writes in keys and ETags.
  for (auto [from_s, to_s] : {std::pair{"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"},
                              {"&gt;", ">"}, {"&apos;", "'"}, {"&#34;", "\""}}) {
    std::string f = from_s;
    for (auto at = out.find(f); at != std::string::npos; at = out.find(f, at + 1))
      out.replace(at, f.size(), to_s);
  }
  return out;
}

struct body_source {
  std::string_view bytes;        // either these...
  std::FILE* file = nullptr;     // ...or this file from its current offset...
  std::uint64_t left = 0;
  const s3_client::source* pull = nullptr;  // ...or what this hands over
};

std::size_t read_body(char* buf, std::size_t size, std::size_t n, void* p) {
  auto& src = *static_cast<body_source*>(p);
  auto want = std::min<std::uint64_t>(size * n, src.left);
  std::size_t got = 0;
  if (src.pull) {
    got = (*src.pull)(buf, static_cast<std::size_t>(want));
    if (got == s3_client::abort_transfer)
      return CURL_READFUNC_ABORT;
  } else if (src.file) {
    got = std::fread(buf, 1, want, src.file);
  } else {
    got = static_cast<std::size_t>(want);
    std::memcpy(buf, src.bytes.data(), got);
    src.bytes.remove_prefix(got);
  }
  src.left -= got;
  return got;
}

struct response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // unless streamed to a sink
};

struct transfer {
  response* res;
  const s3_client::sink* out;
  bool streaming = false;  // a 2xx body goes to `out`
  bool stopped = false;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* p) {
  auto& t = *static_cast<transfer*>(p);
  std::string_view line{data, size * n};
  if (line.starts_with("HTTP/")) {
    t.res->headers.clear();
    auto sp = line.find(' ');
    t.res->status = sp == std::string_view::npos ? 0 : std::atol(std::string{line.substr(sp + 1, 3)}.c_str());
    t.streaming = t.out && t.res->status / 100 == 2;
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name{line.substr(0, colon)};
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    t.res->headers[name] = std::string{value};
  }
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* p) {
  auto& t = *static_cast<transfer*>(p);
  if (t.streaming) {
    if (!(*t.out)({data, size * n})) {
      t.stopped = true;
      return 0;
    }
  } else if (t.res->body.size() < (1u << 20)) {
    t.res->body.append(data, size * n);
  }
  return size * n;
}

error s3_error(const response& r, const std::string& what) {
  auto code = xml_text(r.body, "Code");
  auto message = xml_text(r.body, "Message");
  auto detail = what + ": HTTP " + std::to_string(r.status)
                + (code.empty() ? "" : " " + code) + (message.empty() ? "" : ": " + message);
  if (r.status == 403 || r.status == 401)
    return {"unauthorized", detail};
  if (r.status == 404)
    return {"not_found", detail};
  return {"io", detail};
}

} // namespace

struct s3_client::impl {
  s3_config c;
  std::string scheme;  // "http" / "https"
  std::string host;    // with the port, as signed
  std::string base;    // a path prefix of the endpoint ("" normally)

  explicit impl(s3_config config) : c(std::move(config)) {
    auto e = c.endpoint;
    auto sep = e.find("://");
    scheme = sep == std::string::npos ? "https" : e.substr(0, sep);
    auto rest = sep == std::string::npos ? e : e.substr(sep + 3);
    auto slash = rest.find('/');
    host = rest.substr(0, slash);
    base = slash == std::string::npos ? "" : rest.substr(slash);
    while (base.ends_with('/'))
      base.pop_back();
    if (!c.path_style)
      host = c.bucket + "." + host;
    c.part_size = std::max<std::uint64_t>(c.part_size, 5ull << 20);
    c.parallel_parts = std::max(1u, c.parallel_parts);
  }

  // The unencoded path of `key` (or of the bucket when `key` is empty).
  std::string path_of(const std::string& key) const {
    return base + (c.path_style ? "/" + c.bucket : std::string{}) + "/" + key;
  }

  result<response> perform(const std::string& method, const std::string& path,
                           const header_list& query, header_list headers, body_source* body,
                           const std::string& payload_sha, const sink* out = nullptr) {
    sigv4_request req{method, host, path, query, headers, payload_sha};
    auto sig = sign(req, c.credentials, c.region, unix_date());
    auto url = scheme + "://" + host + uri_encode(path, true);
    std::string q;
    for (auto& [k, v] : query)
      q += (q.empty() ? "?" : "&") + uri_encode(k, false) + "=" + uri_encode(v, false);
    url += q;
    // One handle per thread, reset per request: its connections stay open
    // for the next request to the same server.
    struct thread_handle {
      CURL* h = curl_easy_init();
      ~thread_handle() { curl_easy_cleanup(h); }
    };
    static thread_local thread_handle mine;
    CURL* h = mine.h;
    curl_easy_reset(h);
    curl_slist* list = nullptr;
    for (auto& [k, v] : headers)
      list = curl_slist_append(list, (k + ": " + v).c_str());
    for (auto& [k, v] : sig.headers)
      list = curl_slist_append(list, (k + ": " + v).c_str());
    // libcurl's own additions would not be signed.
    list = curl_slist_append(list, "Expect:");
    bool has_type = false;
    for (auto& [k, v] : headers)
      has_type = has_type || k == "content-type";
    if (!has_type)
      list = curl_slist_append(list, "Content-Type:");
    response res;
    transfer t{&res, out};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    // Downloads reach the sink in 512 KiB pieces rather than 16 KiB ones.
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "PUT" || method == "POST") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      if (method == "POST")
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
      static body_source none;
      body_source* src = body ? body : &none;
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
      curl_easy_setopt(h, CURLOPT_READDATA, src);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(src->left));
      // A part is 8 MiB or more: 512 KiB per send instead of 64 KiB cuts
      // the read callbacks and syscalls eightfold.
      curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    } else if (method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    auto rc = curl_easy_perform(h);
    curl_slist_free_all(list);
    if (t.stopped)
      return error{"io", "the reader stopped the transfer"};
    if (rc != CURLE_OK)
      return error{"unreachable", "S3 at " + c.endpoint + ": " + curl_easy_strerror(rc)};
    return res;
  }

  status_result put_single(const std::string& key, const std::filesystem::path& file,
                           std::uint64_t size, const std::string& type, const std::string& sha) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (!f)
      return error{"io", "cannot read " + file.string()};
    body_source src{{}, f, size};
    auto r = perform("PUT", path_of(key), {}, {{"content-type", type}}, &src, sha);
    std::fclose(f);
    if (!r)
      return r.error();
    if (r->status / 100 != 2)
      return s3_error(*r, "PUT " + key);
    return ok;
  }

  std::string presigned(const std::string& method, const std::string& key, long expires_s,
                        long long now_unix_s) const;
};

result<std::string> s3_client::start_multipart(const std::string& key, const std::string& type) {
  auto started = impl_->perform("POST", impl_->path_of(key), {{"uploads", ""}},
                                {{"content-type", type}}, nullptr, sha256_hex(""));
  if (!started)
    return started.error();
  if (started->status / 100 != 2)
    return s3_error(*started, "starting the multipart upload of " + key);
  auto upload_id = xml_text(started->body, "UploadId");
  if (upload_id.empty())
    return error{"io", "S3 started a multipart upload of " + key + " without an UploadId"};
  return upload_id;
}

result<std::string> s3_client::put_part(const std::string& key, const std::string& upload_id,
                                        unsigned number, std::string_view bytes) {
  body_source src{bytes, nullptr, bytes.size()};
  // Unsigned: the caller keeps the whole object's digest, and hashing every
  // part again costs a pass over the bytes for nothing S3 keeps.
  auto r = impl_->perform("PUT", impl_->path_of(key),
                          {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {},
                          &src, "UNSIGNED-PAYLOAD");
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "part " + std::to_string(number) + " of " + key);
  return r->headers["etag"];
}

status_result s3_client::complete_multipart(const std::string& key, const std::string& upload_id,
                                            const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload>";
  for (std::size_t i = 0; i < etags.size(); ++i)
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i]
           + "</ETag></Part>";
  xml += "</CompleteMultipartUpload>";
  body_source src{xml, nullptr, xml.size()};
  auto done = impl_->perform("POST", impl_->path_of(key), {{"uploadId", upload_id}},
                             {{"content-type", "application/xml"}}, &src, sha256_hex(xml));
  if (!done)
    return done.error();
  // S3 may answer 200 with an error inside.
  if (done->status / 100 != 2 || !xml_text(done->body, "Code").empty())
    return s3_error(*done, "completing the multipart upload of " + key);
  return ok;
}

void s3_client::abort_multipart(const std::string& key, const std::string& upload_id) {
  auto aborted = impl_->perform("DELETE", impl_->path_of(key), {{"uploadId", upload_id}}, {},
                                nullptr, sha256_hex(""));
  if (!aborted || aborted->status / 100 != 2)
    spdlog::warn("s3 multipart=abort_failed key=\"{}\" upload_id={}", key, upload_id);
}

status_result s3_client::put_multipart(const std::string& key, const std::filesystem::path& file,
                                       std::uint64_t size, const std::string& type) {
  auto& c = impl_->c;
  auto upload_id = start_multipart(key, type);
  if (!upload_id)
    return upload_id.error();
  auto parts = static_cast<std::size_t>((size + c.part_size - 1) / c.part_size);
  std::vector<std::string> etags(parts);
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::optional<error> failed;
  auto worker = [&] {
    std::string buf;
    for (;;) {
      auto i = next.fetch_add(1);
      if (i >= parts)
        return;
      {
        std::lock_guard lock{mu};
        if (failed)
          return;
      }
      auto offset = i * c.part_size;
      auto length = std::min<std::uint64_t>(c.part_size, size - offset);
      // One part in memory per worker: the memory bound is parts in flight x part size.
      buf.resize(length);
      std::ifstream in{file, std::ios::binary};
      in.seekg(static_cast<std::streamoff>(offset));
      in.read(buf.data(), static_cast<std::streamsize>(length));
      result<std::string> etag = static_cast<std::uint64_t>(in.gcount()) == length
                                   ? put_part(key, *upload_id, static_cast<unsigned>(i + 1), buf)
                                   : result<std::string>{error{"io", "cannot read " + file.string()}};
      std::lock_guard lock{mu};
      if (!etag) {
        if (!failed)
          failed = etag.error();
        return;
      }
      etags[i] = *etag;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::min<std::size_t>(c.parallel_parts, parts); ++t)
    pool.emplace_back(worker);
  for (auto& t : pool)
    t.join();
  if (!failed)
    if (auto done = complete_multipart(key, *upload_id, etags); !done)
      failed = done.error();
  if (failed) {
    // Nothing half-written stays behind.
    abort_multipart(key, *upload_id);
    return *failed;
  }
  return ok;
}

result<s3_credentials> load_s3_credentials() {
  s3_credentials c;
  if (auto k = std::getenv("AWS_ACCESS_KEY_ID"); k && *k) {
    c.access_key = k;
    if (auto s = std::getenv("AWS_SECRET_ACCESS_KEY"))
      c.secret_key = s;
    if (auto t = std::getenv("AWS_SESSION_TOKEN"))
      c.session_token = t;
    if (c.secret_key.empty())
      return error{"unauthorized", "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"};
    return c;
  }
  std::filesystem::path file;
  if (auto f = std::getenv("AWS_SHARED_CREDENTIALS_FILE"); f && *f)
    file = f;
  else if (auto home = std::getenv("HOME"))
    file = std::filesystem::path{home} / ".aws" / "credentials";
  std::string profile = "default";
  if (auto p = std::getenv("AWS_PROFILE"); p && *p)
    profile = p;
  std::ifstream in{file};
  std::string line, section;
  auto trimmed = [](std::string s) {
    auto a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? std::string{} : s.substr(a, b - a + 1);
  };
  while (std::getline(in, line)) {
    line = trimmed(line);
    if (line.starts_with("[") && line.ends_with("]")) {
      section = trimmed(line.substr(1, line.size() - 2));
      continue;
    }
    auto eq = line.find('=');
    if (section != profile || eq == std::string::npos)
      continue;
    auto key = trimmed(line.substr(0, eq)), value = trimmed(line.substr(eq + 1));
    if (key == "aws_access_key_id")
      c.access_key = value;
    else if (key == "aws_secret_access_key")
      c.secret_key = value;
    else if (key == "aws_session_token")
      c.session_token = value;
  }
  if (c.access_key.empty() || c.secret_key.empty())
    return error{"unauthorized",
                 "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile ["
                   + profile + "] in " + file.string()};
  return c;
}

s3_client::s3_client(s3_config config) : impl_(std::make_unique<impl>(std::move(config))) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}
s3_client::~s3_client() = default;

const s3_config& s3_client::config() const { return impl_->c; }

status_result s3_client::check_bucket() {
  // A listing rather than HEAD: its refusal says why (SignatureDoesNotMatch, NoSuchBucket).
  auto r = impl_->perform("GET", impl_->path_of(""), {{"list-type", "2"}, {"max-keys", "1"}}, {},
                          nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "bucket " + impl_->c.bucket);
  return ok;
}

status_result s3_client::create_bucket() {
  auto r = impl_->perform("PUT", impl_->path_of(""), {}, {}, nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2 && xml_text(r->body, "Code") != "BucketAlreadyOwnedByYou")
    return s3_error(*r, "creating bucket " + impl_->c.bucket);
  return ok;
}

status_result s3_client::delete_bucket() {
  auto r = impl_->perform("DELETE", impl_->path_of(""), {}, {}, nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "deleting bucket " + impl_->c.bucket);
  return ok;
}

status_result s3_client::put_file(const std::string& key, const std::filesystem::path& file,
                                  const std::string& content_type, std::string sha256) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec)
    return error{"io", "cannot read " + file.string() + ": " + ec.message()};
  if (size >= impl_->c.multipart_threshold)
    return put_multipart(key, file, size, content_type);
  if (sha256.empty())
    sha256 = sha256_file_hex(file);
  return impl_->put_single(key, file, size, content_type, sha256);
}

status_result s3_client::put_stream(const std::string& key, std::uint64_t size,
                                    const std::string& content_type, const source& read) {
  body_source src{{}, nullptr, size, &read};
  // Unsigned, like a part: the caller hashes the bytes as they pass.
  auto r = impl_->perform("PUT", impl_->path_of(key), {}, {{"content-type", content_type}}, &src,
                          "UNSIGNED-PAYLOAD");
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "PUT " + key);
  return ok;
}

status_result s3_client::put_bytes(const std::string& key, std::string_view data,
                                   const std::string& content_type) {
  body_source src{data, nullptr, data.size()};
  auto r = impl_->perform("PUT", impl_->path_of(key), {}, {{"content-type", content_type}}, &src,
                          sha256_hex(data));
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "PUT " + key);
  return ok;
}

status_result s3_client::get(const std::string& key, const sink& out,
                             std::optional<std::pair<std::uint64_t, std::uint64_t>> range) {
  header_list headers;
  if (range)
    headers.emplace_back("range", "bytes=" + std::to_string(range->first) + "-"
                                    + std::to_string(range->second));
  auto r = impl_->perform("GET", impl_->path_of(key), {}, headers, nullptr, sha256_hex(""), &out);
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "GET " + key);
  return ok;
}

result<s3_object> s3_client::head(const std::string& key) {
  auto r = impl_->perform("HEAD", impl_->path_of(key), {}, {}, nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "HEAD " + key);
  s3_object o{key, 0, r->headers["etag"]};
  o.size = std::strtoull(r->headers["content-length"].c_str(), nullptr, 10);
  return o;
}

status_result s3_client::remove(const std::string& key) {
  auto r = impl_->perform("DELETE", impl_->path_of(key), {}, {}, nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2 && r->status != 404)
    return s3_error(*r, "DELETE " + key);
  return ok;
}

result<std::vector<s3_object>> s3_client::list(const std::string& prefix) {
  std::vector<s3_object> out;
  std::string token;
  for (;;) {
    header_list q{{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty())
      q.emplace_back("continuation-token", token);
    auto r = impl_->perform("GET", impl_->path_of(""), q, {}, nullptr, sha256_hex(""));
    if (!r)
      return r.error();
    if (r->status / 100 != 2)
      return s3_error(*r, "listing " + prefix);
    std::size_t at = 0, end = 0;
    for (;;) {
      auto item = xml_text(r->body, "Contents", at, &end);
      if (item.empty())
        break;
      at = end;
      out.push_back({xml_text(item, "Key"), std::strtoull(xml_text(item, "Size").c_str(), nullptr, 10),
                     xml_text(item, "ETag")});
    }
    if (xml_text(r->body, "IsTruncated") != "true")
      break;
    token = xml_text(r->body, "NextContinuationToken");
    if (token.empty())
      break;
  }
  return out;
}

result<std::vector<std::string>> s3_client::list_uploads(const std::string& prefix) {
  auto r = impl_->perform("GET", impl_->path_of(""), {{"uploads", ""}, {"prefix", prefix}}, {},
                          nullptr, sha256_hex(""));
  if (!r)
    return r.error();
  if (r->status / 100 != 2)
    return s3_error(*r, "listing the multipart uploads under " + prefix);
  std::vector<std::string> out;
  std::size_t at = 0, end = 0;
  for (;;) {
    auto item = xml_text(r->body, "Upload", at, &end);
    if (item.empty())
      break;
    at = end;
    out.push_back(xml_text(item, "Key"));
  }
  return out;
}

std::string s3_client::presigned_get(const std::string& key, long expires_s,
                                     long long now_unix_s) const {
  return impl_->presigned("GET", key, expires_s, now_unix_s);
}

std::string s3_client::presigned_put(const std::string& key, long expires_s,
                                     long long now_unix_s) const {
  return impl_->presigned("PUT", key, expires_s, now_unix_s);
}

std::string s3_client::impl::presigned(const std::string& method, const std::string& key,
                                       long expires_s, long long now_unix_s) const {
  sigv4_request r{method, host, path_of(key), {}, {}, ""};
  return scheme + "://" + host + presign(r, c.credentials, c.region, amz_date(now_unix_s), expires_s);
}

} // namespace kiln::storage
