#include "actors/credentials.hpp"

#include "actors/project_aggregate.hpp"
#include "events/commit.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace kiln::domain {

namespace {

struct parsed_token {
  char kind = 0;  // 't' or 'w'
  std::string_view id;
};

std::optional<parsed_token> parse(std::string_view token) {
  if (token.size() < 4 || token[0] != 'k' || (token[1] != 't' && token[1] != 'w')
      || token[2] != '.')
    return std::nullopt;
  auto rest = token.substr(3);
  auto dot = rest.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size())
    return std::nullopt;
  return parsed_token{token[1], rest.substr(0, dot)};
}

bool same_hash(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

error unauthorized() { return {"unauthorized", "the token is not valid"}; }

} // namespace

std::string random_secret() {
  unsigned char bytes[32];
  RAND_bytes(bytes, sizeof bytes);
  return to_hex(std::string_view{reinterpret_cast<const char*>(bytes), sizeof bytes});
}

std::string make_api_token(std::string_view id, std::string_view secret) {
  return "kt." + std::string{id} + "." + std::string{secret};
}

std::string make_worker_token(std::string_view name, std::string_view secret) {
  return "kw." + std::string{name} + "." + std::string{secret};
}

std::string token_hash(std::string_view token) { return project::content_hash(token); }

result<grant> authenticate(const read_model& m, std::string_view token) {
  auto p = parse(token);
  if (!p)
    return unauthorized();
  auto hash = token_hash(token);
  if (p->kind == 't') {
    auto it = m.tokens().find(std::string{p->id});
    if (it == m.tokens().end() || it->second.revoked || !same_hash(hash, it->second.token_sha256))
      return unauthorized();
    return grant{grant::kind::api, it->second.id, it->second.scope, it->second.project};
  }
  auto w = m.worker(p->id);
  if (!w || w->deleted || !same_hash(hash, w->token_sha256))
    return unauthorized();
  if (!w->enlisted)
    return error{"not_enlisted", "worker '" + w->name + "' is not enlisted yet: an admin enlists "
                                "it with POST /v1/workers/" + w->name + "/enlist"};
  return grant{grant::kind::worker, w->name, "worker", ""};
}

} // namespace kiln::domain
