#pragma once
// The API token aggregate, pure. A token is issued with a scope (read <
// trigger < admin), optionally limited to one project, and can be revoked.
// The log holds only the token's SHA-256; issuing again with another hash
// replaces it (how `kiln up` rotates the admin token when its file is gone).
//
//   ∅ ──issue──> ISSUED ──revoke──> REVOKED ──issue──> ISSUED
#include "events/event.hpp"
#include "events/result.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::token {

enum class errc {
  not_found,
  invalid_argument,
};
std::string_view to_string(errc e);

// What a token lets its holder do; each scope includes the ones before it.
enum class scope { read, trigger, admin };
std::optional<scope> parse_scope(std::string_view s);
std::string_view to_string(scope s);

struct state {
  bool exists = false;
  bool revoked = false;
  std::string id;
  std::string label;
  std::string scope;
  std::string project;
  std::string token_sha256;

  bool live() const { return exists && !revoked; }
};

struct issue_token {
  std::string id;
  std::string label;
  std::string scope;
  std::string project;
  std::string token_sha256;
};
struct revoke_token {
  std::string reason;
};

using command = std::variant<issue_token, revoke_token>;

result<std::vector<event>> decide(const state& s, const command& c);
void apply(state& s, const event& e);

} // namespace kiln::domain::token
