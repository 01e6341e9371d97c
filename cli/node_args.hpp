#pragma once
// What the server commands (`kiln up`, `kiln core`, `kiln gateway`) share:
// their options, the bus they choose, and how they wait for SIGTERM.
#include "actors/notifier.hpp"
#include "events/bus.hpp"

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>

namespace kiln::cli {

class args;

struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};
listen_address parse_listen(const std::string& s);

// Where notifications go (docs/operations.md). The SMTP password comes
// from the environment, never from the command line (ps would show it).
core::notifier_options notifier_options(const args& a);

// NATS when `--nats` lists servers (error: none answers), else the
// in-process bus unless `nats_required`.
result<std::unique_ptr<bus::bus>> bus_from(const args& a, const std::string& name,
                                           bool nats_required);

// Blocks SIGINT and SIGTERM in this thread and those it starts (call it
// before starting any), then wait_for_stop() takes them.
sigset_t block_stop_signals();
int wait_for_stop(const sigset_t& signals);

} // namespace kiln::cli
