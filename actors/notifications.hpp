#pragma once
// Notifications (issue 7), pure: what a finished build is told to, which
// attempts are due, when a failed one is retried, and the exact request or
// mail each one makes. The notifier (notifier.hpp) does the sending.
//
//  - webhooks: the build JSON POSTed with X-Kiln-Timestamp and
//    X-Kiln-Signature "sha256=HMAC-SHA256(secret, timestamp + '.' + body)"
//    (the scheme kiln's own generic webhook trigger checks), keyed by the
//    project secret the webhook's secret_name names.
//  - email: a plain-text mail to the users; only_failures; on_change (the
//    first failure, the first success after failures).
//  - commit statuses, for builds whose params name a GitHub repository
//    (GH_OWNER, GH_REPO, GIT_SHA) or a GitLab project (GL_PROJECT_ID,
//    GIT_SHA): one per run when it is queued and when it ends, with the
//    project secret githubtok / gitlabtok.
// The trigger's own email/webhooks replace the project's (the fallback).
#include "actors/project_definition.hpp"
#include "actors/read_model.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::domain {

// What completing a build with `result` plans. `previous` is the result of
// the trigger's latest completed build before it (none for its first).
std::vector<notification_planned> plan_notifications(const project_definition& def,
                                                     const std::string& trigger,
                                                     kiln::status result,
                                                     std::optional<kiln::status> previous);

// The result of the latest completed build of `trigger` numbered below `number`.
std::optional<kiln::status> previous_result(const project_summary& p, const std::string& trigger,
                                            std::uint32_t number);

// The commit statuses a build's run is due (kind github_status or
// gitlab_status), empty when the build names no repository.
std::string commit_status_kind(const build_created& facts);

struct retry_policy {
  std::int64_t first_delay_ms = 10'000;  // then x3 each time: 10 s, 30 s, 90 s, ...
  std::uint32_t max_attempts = 6;
  std::int64_t lease_ms = 60'000;        // an attempt's sender is presumed dead after this
};

// When attempt `attempt` (failed at `now_ms`) is tried again; 0: never
// (the last attempt, or a refusal that a retry cannot change).
std::int64_t retry_at(const retry_policy& policy, std::uint32_t attempt, std::int64_t now_ms,
                      bool permanent);

struct due_notification {
  std::string project;
  std::uint32_t build = 0;
  std::string id;
  std::string kind;
  std::string spec;
};

// The attempts that may start at `now_ms`: not settled, no attempt under
// way, past their retry time; a run's statuses one at a time, in order.
std::vector<due_notification> due_notifications(const read_model& model, std::int64_t now_ms);

// A refusal that trying again will not change (400, 401, 403, 404, 410,
// 422 ...); 408, 425, 429 and 5xx are worth a retry.
bool permanent_http_status(int status);

// ---- what each one sends ----

struct notify_settings {
  std::string public_url;  // links to builds and runs: "http://kiln.example:8080"
  std::string github_api = "https://api.github.com";
  std::string gitlab_api = "https://gitlab.com/api/v4";
  std::string mail_from = "kiln@localhost";
};

struct outgoing_http {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct outgoing_mail {
  std::vector<std::string> to;
  std::string message;  // RFC 5322, CRLF line ends, dot-stuffing left to SMTP
};

// The project secrets a notification needs, by name (error: which one is missing).
using secret_lookup = std::map<std::string, std::string>;

// The project secrets notification `n` is sent with.
std::vector<std::string> secrets_needed(const due_notification& n);

// Errors (code "invalid_argument") are permanent: a missing secret, a spec
// that does not parse. `build_json` is the build as GET /v1/.../builds/N renders it.
result<outgoing_http> webhook_delivery(const due_notification& n, const std::string& build_json,
                                       const secret_lookup& secrets, std::int64_t now_unix_s);
result<outgoing_http> status_delivery(const due_notification& n, const build_summary& b,
                                      const secret_lookup& secrets, const notify_settings& s);
result<outgoing_mail> mail_delivery(const due_notification& n, const build_summary& b,
                                    const notify_settings& s, std::int64_t now_unix_s);

} // namespace kiln::domain
