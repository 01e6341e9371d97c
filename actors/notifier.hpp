#pragma once
// The notifier, beside a core: every tick it asks the core which
// notifications are due (notifications.hpp), claims each attempt, sends it
// (HTTP with libcurl for webhooks and commit statuses, SMTP for e-mail) and
// records the outcome, with the next try's time when it failed. A claim is
// an expected-version append on the build, so several cores' notifiers
// never send one attempt twice.
#include "actors/notifications.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace kiln::core {

class core;

struct notifier_options {
  domain::notify_settings settings;
  domain::retry_policy retry;
  std::string smtp_url;       // smtp://host:port or smtps://; empty: no e-mail
  std::string smtp_user;      // with smtp_password: AUTH
  std::string smtp_password;
  std::chrono::milliseconds tick{1000};
  std::chrono::milliseconds timeout{10'000};  // one delivery's connect + answer
  std::size_t parallel = 4;                   // deliveries under way at once
};

class notifier {
 public:
  // Starts on its own thread; `c` must outlive it.
  notifier(core& c, notifier_options options);
  ~notifier();  // stops, waiting for deliveries under way (each bounded by the timeout)

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
