#include "storage/leader_balance.hpp"

#include "storage/jetstream_link.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <thread>

namespace kiln::storage {

std::optional<std::string> stream_to_move(const std::vector<stream_placement>& streams) {
  std::map<std::string, int> leads;
  for (auto& s : streams) {
    for (auto& server : s.servers)
      leads[server];
    if (!s.leader.empty())
      ++leads[s.leader];
  }
  for (auto& s : streams) {
    if (s.leader.empty() || leads[s.leader] < 2)
      continue;
    for (auto& server : s.servers)
      if (server != s.leader && leads[server] == 0)
        return s.stream;
  }
  return std::nullopt;
}

namespace {

using clock_type = std::chrono::steady_clock;

// Every stream's placement, once each has a leader (or `settle` is over);
// streams JetStream does not have are left out.
result<std::vector<stream_placement>> read_placements(jetstream::link& l,
                                                      const balance_options& o) {
  auto until = clock_type::now() + o.settle;
  for (;;) {
    std::vector<stream_placement> out;
    bool electing = false;
    for (auto& name : o.streams) {
      auto p = l.placement(name);
      if (!p && p.error().code == "not_found")
        continue;
      if (!p)
        return p.error();
      electing = electing || p->leader.empty();
      out.push_back(std::move(*p));
    }
    if (!electing || clock_type::now() >= until)
      return out;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

// Until `stream` has a leader other than `was`, or `settle` is over.
void wait_for_new_leader(jetstream::link& l, const std::string& stream, const std::string& was,
                         std::chrono::milliseconds settle) {
  auto until = clock_type::now() + settle;
  while (clock_type::now() < until) {
    auto p = l.placement(stream);
    if (p && !p->leader.empty() && p->leader != was)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

} // namespace

result<balance_outcome> balance_leaders(const balance_options& o) {
  auto l = jetstream::link::connect(o.servers, "kiln-balance", o.settle);
  if (!l)
    return l.error();
  auto until = clock_type::now() + o.time_limit;
  balance_outcome out;
  for (;;) {
    auto placements = read_placements(**l, o);
    if (!placements)
      return placements.error();
    out.streams = std::move(*placements);
    auto move = stream_to_move(out.streams);
    if (!move) {
      out.spread = true;
      return out;
    }
    if (out.step_downs >= o.max_step_downs || clock_type::now() >= until)
      return out;
    std::string was;
    for (auto& s : out.streams)
      if (s.stream == *move)
        was = s.leader;
    if (auto down = (*l)->step_down(*move); !down)
      return down.error();
    ++out.step_downs;
    spdlog::info("balance stream={} step_down_from={}", *move, was);
    wait_for_new_leader(**l, *move, was, o.settle);
  }
}

} // namespace kiln::storage
