#include "cli/node_args.hpp"

#include "cli/args.hpp"
#include "events/in_process_bus.hpp"
#include "events/nats_bus.hpp"

#include <cstdlib>
#include <pthread.h>

namespace kiln::cli {

listen_address parse_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw usage_error("--listen wants HOST:PORT, not '" + s + "'");
  auto host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    auto port = std::stoul(s.substr(colon + 1));
    if (port > 65535)
      throw std::out_of_range(s);
    return {host, static_cast<std::uint16_t>(port)};
  } catch (const std::exception&) {
    throw usage_error("--listen wants HOST:PORT, not '" + s + "'");
  }
}

core::notifier_options notifier_options(const args& a) {
  core::notifier_options o;
  auto& s = o.settings;
  s.public_url = a.get_or("public-url", "");
  while (s.public_url.ends_with('/'))
    s.public_url.pop_back();
  s.github_api = a.get_or("github-api", s.github_api);
  s.gitlab_api = a.get_or("gitlab-api", s.gitlab_api);
  s.mail_from = a.get_or("smtp-from", s.mail_from);
  o.smtp_url = a.get_or("smtp", "");
  if (!o.smtp_url.empty() && !o.smtp_url.starts_with("smtp://") && !o.smtp_url.starts_with("smtps://"))
    throw usage_error("--smtp wants smtp://HOST:PORT or smtps://HOST:PORT, not '" + o.smtp_url + "'");
  o.smtp_user = a.get_or("smtp-user", "");
  if (auto pw = std::getenv("KILN_SMTP_PASSWORD"))
    o.smtp_password = pw;
  if (auto retry = a.get("notify-retry")) {
    double seconds = 0;
    try {
      seconds = std::stod(*retry);
    } catch (const std::exception&) {
      seconds = -1;
    }
    if (!(seconds > 0))
      throw usage_error("--notify-retry wants seconds (more than 0), not '" + *retry + "'");
    o.retry.first_delay_ms = static_cast<std::int64_t>(seconds * 1000);
    o.tick = std::min<std::chrono::milliseconds>(
      o.tick, std::chrono::milliseconds{std::max<std::int64_t>(50, o.retry.first_delay_ms / 2)});
  }
  return o;
}

result<std::unique_ptr<bus::bus>> bus_from(const args& a, const std::string& name,
                                           bool nats_required) {
  auto servers = a.get_list("nats");
  if (servers.empty()) {
    if (nats_required)
      throw usage_error("--nats nats://HOST:PORT[,…] is required: this node talks to the others over NATS");
    return std::unique_ptr<bus::bus>{std::make_unique<bus::in_process_bus>()};
  }
  auto connected = bus::nats_bus::connect({servers, name});
  if (!connected)
    return connected.error();
  return std::unique_ptr<bus::bus>{std::move(*connected)};
}

sigset_t block_stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  return s;
}

int wait_for_stop(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

} // namespace kiln::cli
