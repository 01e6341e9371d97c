#include "actors/notifier.hpp"

#include "actors/build_json.hpp"
#include "actors/core.hpp"
#include "actors/periodic.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace kiln::core {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

struct outcome {
  bool delivered = false;
  bool permanent = false;
  std::string detail;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  auto& body = *static_cast<std::string*>(out);
  if (body.size() < 4096)
    body.append(data, std::min<std::size_t>(size * n, 4096 - body.size()));
  return size * n;
}

struct upload_source {
  std::string_view rest;
};

std::size_t feed(char* buffer, std::size_t size, std::size_t n, void* in) {
  auto& src = *static_cast<upload_source*>(in);
  auto len = std::min(size * n, src.rest.size());
  std::memcpy(buffer, src.rest.data(), len);
  src.rest.remove_prefix(len);
  return len;
}

// The first line of a reply body, short enough for an event.
std::string excerpt(const std::string& body) {
  auto line = body.substr(0, body.find('\n'));
  if (line.size() > 200)
    line = line.substr(0, 200) + "...";
  return line;
}

class easy {
 public:
  easy() : h_(curl_easy_init()) {}
  ~easy() {
    curl_slist_free_all(list_);
    curl_easy_cleanup(h_);
  }
  CURL* get() const { return h_; }
  void add(const std::string& line) { list_ = curl_slist_append(list_, line.c_str()); }
  curl_slist* list() const { return list_; }

 private:
  CURL* h_;
  curl_slist* list_ = nullptr;
};

outcome post(const domain::outgoing_http& req, std::chrono::milliseconds timeout) {
  easy e;
  std::string body;
  for (auto& [k, v] : req.headers)
    e.add(k + ": " + v);
  e.add("User-Agent: kiln");
  e.add("Expect:");
  auto h = e.get();
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, e.list());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  auto rc = curl_easy_perform(h);
  if (rc != CURLE_OK)
    return {false, false, curl_easy_strerror(rc)};
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  auto detail = "HTTP " + std::to_string(status);
  if (status >= 200 && status < 300)
    return {true, false, detail};
  if (!body.empty())
    detail += ": " + excerpt(body);
  return {false, domain::permanent_http_status(static_cast<int>(status)), detail};
}

outcome send_mail(const notifier_options& o, const domain::outgoing_mail& m) {
  if (o.smtp_url.empty())
    return {false, true, "no SMTP server is configured (kiln up --smtp URL)"};
  easy e;
  for (auto& to : m.to)
    e.add("<" + to + ">");
  auto from = "<" + o.settings.mail_from + ">";
  upload_source src{m.message};
  auto h = e.get();
  curl_easy_setopt(h, CURLOPT_URL, o.smtp_url.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, e.list());
  curl_easy_setopt(h, CURLOPT_READFUNCTION, feed);
  curl_easy_setopt(h, CURLOPT_READDATA, &src);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  if (!o.smtp_user.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, o.smtp_user.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, o.smtp_password.c_str());
  }
  auto rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (rc == CURLE_OK)
    return {true, false, "SMTP " + std::to_string(code)};
  // 5xx: the server refuses for good (an unknown recipient, a refused login).
  return {false, code >= 500 && code < 600,
          std::string{curl_easy_strerror(rc)} + (code ? " (SMTP " + std::to_string(code) + ")" : "")};
}

} // namespace

struct notifier::impl {
  core& c;
  notifier_options o;
  std::unique_ptr<periodic> thread;

  impl(core& c, notifier_options o) : c(c), o(std::move(o)) {}
  void tick();
  void attempt(const domain::due_notification& n);
  outcome deliver(const domain::due_notification& n);
};

void notifier::impl::tick() {
  auto due = c.read(list_due_notifications{});
  if (!due)
    return;
  if (auto list = std::get_if<std::vector<domain::due_notification>>(&*due)) {
    // A few at a time, so one slow receiver does not hold the others up.
    for (std::size_t i = 0; i < list->size(); i += o.parallel) {
      std::vector<std::thread> batch;
      for (auto j = i; j < std::min(list->size(), i + o.parallel); ++j)
        batch.emplace_back([this, &n = (*list)[j]] { attempt(n); });
      for (auto& t : batch)
        t.join();
    }
  }
}

void notifier::impl::attempt(const domain::due_notification& n) {
  auto claimed = c.call(start_notification{n.project, n.build, n.id, o.retry.lease_ms});
  if (!claimed)
    return;  // not due any more (another core has it), or the core is stopping
  auto claim = std::get_if<notification_claim>(&*claimed);
  if (!claim)
    return;
  auto result = deliver(n);
  auto retry = result.delivered ? 0
                                : domain::retry_at(o.retry, claim->attempt, now_ms(), result.permanent);
  auto level = result.delivered ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level,
              "notify kind={} project={} build={} id={} attempt={} delivered={} detail=\"{}\"{}",
              n.kind, n.project, n.build, n.id, claim->attempt, result.delivered, result.detail,
              result.delivered ? "" : retry ? " retry=scheduled" : " retry=given_up");
  auto done = c.call(finish_notification{n.project, n.build, n.id, claim->attempt,
                                         result.delivered, result.detail, retry});
  if (!done)
    spdlog::warn("notify project={} build={} id={} record=failed error=\"{}\"", n.project,
                 n.build, n.id, done.error().message);
}

outcome notifier::impl::deliver(const domain::due_notification& n) {
  auto got = c.read(get_build{n.project, n.build});
  if (!got)
    return {false, false, "the build is not readable: " + got.error().message};
  auto& b = std::get<domain::build_summary>(*got);
  domain::secret_lookup secrets;
  for (auto& name : domain::secrets_needed(n))
    if (auto v = c.read(open_secret{n.project, name}))
      if (auto sv = std::get_if<secret_value>(&*v))
        secrets[name] = sv->value;
  auto now_s = now_ms() / 1000;
  if (n.kind == "webhook") {
    auto req = domain::webhook_delivery(n, build_json(b, false).dump(), secrets, now_s);
    return req ? post(*req, o.timeout) : outcome{false, true, req.error().message};
  }
  if (n.kind == "github_status" || n.kind == "gitlab_status") {
    auto req = domain::status_delivery(n, b, secrets, o.settings);
    return req ? post(*req, o.timeout) : outcome{false, true, req.error().message};
  }
  if (n.kind == "email") {
    auto mail = domain::mail_delivery(n, b, o.settings, now_s);
    return mail ? send_mail(o, *mail) : outcome{false, true, mail.error().message};
  }
  return {false, true, "kiln does not know how to send a '" + n.kind + "'"};
}

notifier::notifier(core& c, notifier_options options)
  : impl_(std::make_unique<impl>(c, std::move(options))) {
  impl_->thread = std::make_unique<periodic>(impl_->o.tick, [p = impl_.get()](const periodic&) { p->tick(); });
}

notifier::~notifier() = default;

} // namespace kiln::core
