// Which stream to step down so that kiln's streams are led by different
// servers (storage/leader_balance.hpp); the step-downs themselves run on a
// real cluster in cluster_faults_test ("cluster.sh balance").
#include "storage/leader_balance.hpp"

#include <catch2/catch.hpp>

using kiln::storage::stream_placement;
using kiln::storage::stream_to_move;

namespace {
const std::vector<std::string> three{"n1", "n2", "n3"};
}

TEST_CASE("leader balance: two streams led by one server while another leads none, one moves") {
  std::vector<stream_placement> s{{"LOG", "n1", three}, {"CONSOLE", "n1", three}, {"EVENTS", "n2", {"n2"}}};
  auto move = stream_to_move(s);
  REQUIRE(move);
  CHECK((*move == "LOG" || *move == "CONSOLE"));
}

TEST_CASE("leader balance: streams led by three servers stay") {
  std::vector<stream_placement> s{{"LOG", "n1", three}, {"CONSOLE", "n2", three}, {"EVENTS", "n3", {"n3"}}};
  CHECK_FALSE(stream_to_move(s));
}

TEST_CASE("leader balance: a one-replica stream never moves, the other does") {
  // The events (one replica) share n1 with the log: the log moves.
  std::vector<stream_placement> s{{"EVENTS", "n1", {"n1"}}, {"LOG", "n1", three}, {"CONSOLE", "n2", three}};
  CHECK(stream_to_move(s) == std::optional<std::string>{"LOG"});
  // Two one-replica streams on one server: nothing can move.
  std::vector<stream_placement> stuck{{"A", "n1", {"n1"}}, {"B", "n1", {"n1"}}, {"C", "n2", {"n2"}}};
  CHECK_FALSE(stream_to_move(stuck));
}

TEST_CASE("leader balance: no server left idle, or a stream electing, and nothing moves") {
  // Two servers, three streams: one server must lead two.
  std::vector<stream_placement> two{{"LOG", "n1", {"n1", "n2"}}, {"CONSOLE", "n1", {"n1", "n2"}},
                                    {"EVENTS", "n2", {"n2"}}};
  CHECK_FALSE(stream_to_move(two));
  // A stream with no leader yet is not stepped down, nor counted.
  std::vector<stream_placement> electing{{"LOG", "", three}, {"CONSOLE", "n1", three}};
  CHECK_FALSE(stream_to_move(electing));
}
