#pragma once
// Bearer tokens: what they look like, and who holds one. Pure (the read
// model in, a grant out), so that it is tested without a server.
//
//   kt.<id>.<secret>    an API token (people, tools); scope read|trigger|admin
//   kw.<name>.<secret>  a worker's key, from its registration
//
// The prefix names the record to look up; the log holds only the SHA-256 of
// the whole token, and the check compares hashes in constant time.
#include "actors/read_model.hpp"
#include "events/result.hpp"

#include <string>
#include <string_view>

namespace kiln::domain {

struct grant {
  enum class kind { api, worker } holder = kind::api;
  std::string id;       // token id, or the worker's name
  std::string scope;    // read | trigger | admin; "worker" for a worker
  std::string project;  // empty: every project
};

// A fresh secret: 32 random bytes as hex.
std::string random_secret();
std::string make_api_token(std::string_view id, std::string_view secret);
std::string make_worker_token(std::string_view name, std::string_view secret);
std::string token_hash(std::string_view token);

// "unauthorized" for an unknown, malformed, revoked or wrong token;
// "forbidden" for a worker that is not enlisted (yet).
result<grant> authenticate(const read_model& m, std::string_view token);

} // namespace kiln::domain
