#pragma once
// Internal to the core: the messages its actors exchange and what they
// share. Included only by the core's .cpp files (it pulls in CAF).
#include "actors/relay.hpp"
#include "actors/build_aggregate.hpp"
#include "actors/core.hpp"
#include "actors/project_aggregate.hpp"
#include "actors/read_model.hpp"
#include "actors/run_aggregate.hpp"
#include "actors/token_aggregate.hpp"
#include "actors/worker_aggregate.hpp"
#include "events/commit.hpp"
#include "storage/event_log.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <variant>

namespace kiln::core::detail {

using exec_atom = caf::atom_constant<caf::atom("exec")>;          // run a command
using peek_atom = caf::atom_constant<caf::atom("peek")>;          // copy of a state
using appended_atom = caf::atom_constant<caf::atom("appended")>;  // the log answered
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;      // from the subscription
using process_atom = caf::atom_constant<caf::atom("process")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using cron_atom = caf::atom_constant<caf::atom("cron")>;  // cron triggers, every second
using request_atom = caf::atom_constant<caf::atom("request")>;
using query_atom = caf::atom_constant<caf::atom("query")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using lead_atom = caf::atom_constant<caf::atom("lead")>;  // this core leads, or no longer
using seen_atom = caf::atom_constant<caf::atom("seen")>;  // a check-in another core answered
using drain_atom = caf::atom_constant<caf::atom("drain")>;  // the core stops: answer what is held

// Where the projections' snapshot lives among the streams' snapshots; no
// stream name starts with '$'.
inline const stream_id read_model_snapshot{"$read-model"};

using aggregate_command = std::variant<domain::project::command, domain::build::command,
                                       domain::run::command, domain::worker::command,
                                       domain::token::command>;

struct domain_command {
  stream_id stream;
  aggregate_command command;
  commit_metadata meta;
};

// What a command did: the events it appended (or, for a repeated command id,
// the events the first one appended); none when it changed nothing.
struct command_outcome {
  global_seq seq;
  bool duplicate = false;
  std::vector<event> events;
};
using command_result = result<command_outcome>;

using aggregate_state = std::variant<domain::project::state, domain::build::state,
                                     domain::run::state, domain::worker::state,
                                     domain::token::state>;
using state_result = result<aggregate_state>;

struct append_result {
  result<storage::append_receipt> value;
};

using reply_callback = core::callback<reply>;
using query_callback = core::callback<query_result>;

// Where a core passes on the check-ins it answered (core::share_checkins):
// worker, accepting.
using checkin_relay = relay<const std::string&, bool>;
// Who hears of each commit once the read model holds it (core::on_applied).
using applied_relay = relay<const logged_commit&>;

// What every actor of one core shares. Set up before the first spawn.
struct environment {
  storage::event_log& log;
  const storage::secret_box& secrets;
  core_config config;
  std::shared_ptr<applied_relay> applied;
  std::shared_ptr<checkin_relay> checkins;
};
using env_ptr = std::shared_ptr<const environment>;

struct registry_stats {
  std::size_t live = 0;
  std::size_t spawned = 0;
  std::size_t passivated = 0;
};

// The registry routes commands and peeks to one actor per stream, spawning
// it on demand and letting it go when it has been idle (aggregate_host.cpp).
caf::actor spawn_registry(caf::actor_system& sys, env_ptr env);

// The projector holds the read model, runs the process managers and the
// scheduler, and serves requests and queries (projector.cpp).
caf::actor spawn_projector(caf::actor_system& sys, env_ptr env, caf::actor registry,
                           std::shared_ptr<domain::read_model> model);

std::int64_t now_ns();

} // namespace kiln::core::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::domain_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::command_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::state_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::append_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::reply_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::query_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::detail::registry_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::request_context)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::core::core_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::logged_commit)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::stream_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kiln::global_seq)
