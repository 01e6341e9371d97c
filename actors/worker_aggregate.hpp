#pragma once
// The worker aggregate, pure. A worker registers itself (pending), an admin
// enlists it before it gets work; it is online while it checks in.
//
//   ∅ ──register──> PENDING ──enlist──> ENLISTED ──delist──> PENDING
//                      │                   │
//                      └──── delete ───────┴──> DELETED ──register──> PENDING
//   online / offline are orthogonal: set by check-ins and their absence.
#include "events/event.hpp"
#include "events/result.hpp"

#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::worker {

enum class errc {
  not_found,
  already_exists,
  invalid_argument,
};
std::string_view to_string(errc e);

struct state {
  bool exists = false;
  bool deleted = false;
  std::string name;
  std::vector<std::string> tags;
  std::uint32_t concurrency = 1;
  std::string host_json;
  std::string token_sha256;
  bool enlisted = false;
  bool online = false;

  bool live() const { return exists && !deleted; }
};

struct register_worker {
  std::string name;
  std::vector<std::string> tags;
  std::uint32_t concurrency = 1;
  std::string host_json;
  std::string token_sha256;
};
struct enlist_worker {};
struct delist_worker {
  std::string reason;
};
struct delete_worker {
  std::string reason;
};
struct mark_online {};
struct mark_offline {
  std::string reason;
};

using command = std::variant<register_worker, enlist_worker, delist_worker, delete_worker,
                             mark_online, mark_offline>;

result<std::vector<event>> decide(const state& s, const command& c);
void apply(state& s, const event& e);

} // namespace kiln::domain::worker
