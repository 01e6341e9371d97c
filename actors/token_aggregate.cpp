#include "actors/token_aggregate.hpp"

#include "actors/aggregate.hpp"

namespace kiln::domain::token {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

std::optional<scope> parse_scope(std::string_view s) {
  if (s == "read")
    return scope::read;
  if (s == "trigger")
    return scope::trigger;
  if (s == "admin")
    return scope::admin;
  return std::nullopt;
}

std::string_view to_string(scope s) {
  switch (s) {
    case scope::read: return "read";
    case scope::trigger: return "trigger";
    case scope::admin: return "admin";
  }
  return "unknown";
}

namespace {

using events = std::vector<event>;

result<events> decide_one(const state& s, const issue_token& c) {
  if (!plain_name(c.id, 64))
    return refuse(errc::invalid_argument,
                  "a token id is 1-64 of letters, digits, '-', '_' and '.', not '" + c.id + "'");
  if (!parse_scope(c.scope))
    return refuse(errc::invalid_argument,
                  "scope must be read, trigger or admin, not '" + c.scope + "'");
  if (!c.project.empty() && !plain_name(c.project, 128))
    return refuse(errc::invalid_argument, "no valid project name '" + c.project + "'");
  if (c.token_sha256.size() != 64)
    return refuse(errc::invalid_argument, "a token needs its SHA-256");
  if (s.live() && s.token_sha256 == c.token_sha256 && s.scope == c.scope
      && s.project == c.project && s.label == c.label)
    return events{};
  return events{token_issued{c.id, c.label, c.scope, c.project, c.token_sha256}};
}

result<events> decide_one(const state& s, const revoke_token& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such token");
  return events{token_revoked{c.reason}};
}

} // namespace

result<std::vector<event>> decide(const state& s, const command& c) {
  return std::visit([&](auto& x) { return decide_one(s, x); }, c);
}

void apply(state& s, const event& e) {
  if (auto x = std::get_if<token_issued>(&e)) {
    s = state{true, false, x->id, x->label, x->scope, x->project, x->token_sha256};
  } else if (std::get_if<token_revoked>(&e)) {
    s.revoked = true;
  }
}

} // namespace kiln::domain::token
