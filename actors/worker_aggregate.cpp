#include "actors/worker_aggregate.hpp"

#include "actors/aggregate.hpp"

namespace kiln::domain::worker {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

namespace {

using events = std::vector<event>;

result<events> decide_one(const state& s, const register_worker& c) {
  if (s.live())
    return refuse(errc::already_exists, "worker '" + c.name + "' is registered; delete it first");
  if (!plain_name(c.name, 64))
    return refuse(errc::invalid_argument,
                  "a worker name is 1-64 of letters, digits, '-', '_' and '.', not '" + c.name + "'");
  if (c.concurrency == 0 || c.concurrency > 1024)
    return refuse(errc::invalid_argument, "concurrency must be 1 to 1024");
  if (c.token_sha256.empty())
    return refuse(errc::invalid_argument, "a worker needs a token");
  return events{worker_registered{c.name, c.tags, c.concurrency, c.host_json, c.token_sha256}};
}

result<events> decide_one(const state& s, const enlist_worker&) {
  if (!s.live())
    return refuse(errc::not_found, "no such worker");
  return s.enlisted ? events{} : events{worker_enlisted{}};
}

result<events> decide_one(const state& s, const delist_worker& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such worker");
  return s.enlisted ? events{worker_delisted{c.reason}} : events{};
}

result<events> decide_one(const state& s, const delete_worker& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such worker");
  return events{worker_deleted{c.reason}};
}

result<events> decide_one(const state& s, const mark_online&) {
  if (!s.live())
    return refuse(errc::not_found, "no such worker");
  return s.online ? events{} : events{worker_online{}};
}

result<events> decide_one(const state& s, const mark_offline& c) {
  if (!s.live())
    return refuse(errc::not_found, "no such worker");
  return s.online ? events{worker_offline{c.reason}} : events{};
}

} // namespace

result<std::vector<event>> decide(const state& s, const command& c) {
  return std::visit([&](auto& x) { return decide_one(s, x); }, c);
}

void apply(state& s, const event& e) {
  if (auto x = std::get_if<worker_registered>(&e)) {
    s = state{};
    s.exists = true;
    s.name = x->name;
    s.tags = x->tags;
    s.concurrency = x->concurrency;
    s.host_json = x->host_json;
    s.token_sha256 = x->token_sha256;
  } else if (std::get_if<worker_enlisted>(&e)) {
    s.enlisted = true;
  } else if (std::get_if<worker_delisted>(&e)) {
    s.enlisted = false;
  } else if (std::get_if<worker_deleted>(&e)) {
    s.deleted = true;
    s.enlisted = false;
    s.online = false;
  } else if (std::get_if<worker_online>(&e)) {
    s.online = true;
  } else if (std::get_if<worker_offline>(&e)) {
    s.online = false;
  }
}

} // namespace kiln::domain::worker
