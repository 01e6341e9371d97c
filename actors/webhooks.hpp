#pragma once
// Incoming webhooks (issue 7), pure: a request to /v1/hooks/{kind}/{project}
// is verified with the project's key and turned into the builds it asks
// for, or refused with the reason. The host opens the secrets and makes
// the builds; nothing here does I/O.
//
//  - github: X-Hub-Signature-256 "sha256=HMAC-SHA256(key, body)"; events
//    ping, push, pull_request (opened, synchronize, reopened, labeled) for
//    `github_pr` triggers. A pull request from a fork builds only with the
//    `ok-to-test` label, and never receives secrets (H_UNTRUSTED=1).
//  - gitlab: X-Gitlab-Token equal to the key; Push Hook and Merge Request
//    Hook for `gitlab_mr` triggers.
//  - generic: X-Kiln-Timestamp (unix seconds) and X-Kiln-Signature
//    "sha256=HMAC-SHA256(key, timestamp + '.' + body)", refused when older
//    (or newer) than 5 minutes; the body names the trigger's params, ref
//    and sha, for `webhook` triggers.
// The key is the secret the trigger's `webhook-secret:` names, else the
// project secret `webhook-key`. Comparisons are constant-time.
#include "actors/project_aggregate.hpp"
#include "events/result.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::domain {

struct webhook_request {
  std::string kind;  // github, gitlab, generic
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  std::string trigger;  // ?trigger=NAME: only this one (else every trigger of the kind)
  std::int64_t now_unix_s = 0;
};

struct webhook_outcome {
  std::vector<project::allocate_build> builds;  // may be empty (ping, a gated pull request)
  std::string note;                             // why, for the answer
};

// Errors: not_found (no trigger of the kind, or no key), unauthorized (a
// missing or wrong signature or token, a stale timestamp), bad_request
// (malformed JSON, an event kiln does not handle).
result<webhook_outcome> decide_webhook(const project_definition& def,
                                       const std::map<std::string, std::string>& secrets,
                                       const webhook_request& request);

// "sha256=<hex>" of HMAC-SHA256(key, text): what senders put in headers.
std::string webhook_signature(const std::string& key, const std::string& text);

// H_UNTRUSTED=1 in a build's params: its runs get no secrets.
inline constexpr const char* untrusted_param = "H_UNTRUSTED";

} // namespace kiln::domain
