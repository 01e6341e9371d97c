#pragma once
// Shared by the pure aggregate tests.
#include "events/result.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace kiln::test {

// The error code with which `decide` refuses `command` in `state`; fails the
// test when it is accepted.
template <class Decide, class State, class Command>
std::string refusal(Decide decide, const State& state, const Command& command) {
  auto r = decide(state, command);
  if (r)
    FAIL("accepted a command that must be refused");
  return r.error().code;
}

} // namespace kiln::test
