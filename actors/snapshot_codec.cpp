#include "actors/snapshot_codec.hpp"

#include "events/json_types.hpp"

namespace kiln::domain {

namespace project {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, deleted, name, definition_version, yaml,
                                   content_sha256, secrets, last_build, cron_slots, git_refs)
}
namespace build {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(notification_state, attempts, lease_until_ms, retry_at_ms,
                                   in_flight, delivered, abandoned)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, created, runs, cancelled, completed, result,
                                   notifications, pinned, pin_name)
}
namespace run {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, project, build, name, host_tag, rundef,
                                   timeout_s, status, worker, attempt, cancel_requested,
                                   exit_code, message, artifacts, tests, artifacts_expired,
                                   console_object)
}
namespace worker {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, deleted, name, tags, concurrency, host_json,
                                   token_sha256, enlisted, online)
}
namespace token {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, revoked, id, label, scope, project, token_sha256)
}

namespace {

// The layout version: bump it when a state's fields change, so that old
// snapshots are ignored rather than misread.
// 2: projects keep cron slots and git refs; 3: builds their notifications;
// 4: pins and expired artifacts; 5: archived consoles.
constexpr int layout = 5;

template <class State>
std::string encode(std::string_view kind, const State& s) {
  nlohmann::json j{{"kind", kind}, {"layout", layout}, {"state", s}};
  return j.dump();
}

template <class State>
bool decode(std::string_view kind, std::string_view bytes, State& s) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || j.value("kind", "") != kind || j.value("layout", 0) != layout)
    return false;
  try {
    s = j.at("state").get<State>();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

} // namespace

std::string encode_snapshot(const project::state& s) { return encode("project", s); }
std::string encode_snapshot(const build::state& s) { return encode("build", s); }
std::string encode_snapshot(const run::state& s) { return encode("run", s); }
std::string encode_snapshot(const worker::state& s) { return encode("worker", s); }
std::string encode_snapshot(const token::state& s) { return encode("token", s); }

bool decode_snapshot(std::string_view bytes, project::state& s) {
  if (!decode("project", bytes, s))
    return false;
  // The parsed definition is derived: parse it again, as apply does.
  auto def = parse_project_definition(s.yaml);
  s.definition = def ? std::make_shared<const project_definition>(std::move(*def)) : nullptr;
  return true;
}
bool decode_snapshot(std::string_view bytes, build::state& s) { return decode("build", bytes, s); }
bool decode_snapshot(std::string_view bytes, run::state& s) { return decode("run", bytes, s); }
bool decode_snapshot(std::string_view bytes, worker::state& s) { return decode("worker", bytes, s); }
bool decode_snapshot(std::string_view bytes, token::state& s) { return decode("token", bytes, s); }

} // namespace kiln::domain
