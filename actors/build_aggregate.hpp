#pragma once
// The build aggregate, pure. A build is frozen at creation: its trigger,
// params, ref/sha and the definition version it was made from; a later
// change to the definition never alters it.
//
//   ∅ ──create──> RUNNING ──complete(PASSED|FAILED|CANCELLED)──> done
//                 │  ▲  │
//                 └──┘  └──cancel──> CANCELLING ──complete(CANCELLED)──> done
//                 add_runs (a chained trigger fired; names stay unique)
#include "events/event.hpp"
#include "events/result.hpp"

#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::build {

enum class errc {
  not_found,
  already_exists,
  finished,          // completed builds accept nothing more
  duplicate_run,     // a chained run's name is already in the build
  invalid_argument,
};
std::string_view to_string(errc e);

struct state {
  bool exists = false;
  build_created created;  // the frozen facts
  std::vector<std::string> runs;  // in the order they joined
  bool cancelled = false;
  bool completed = false;
  kiln::status result = kiln::status::running;
};

struct create_build {
  build_created facts;
};
struct add_runs {
  std::string trigger;
  std::string parent_run;
  std::vector<std::string> runs;
};
struct cancel_build {
  std::string reason;
};
struct complete_build {
  kiln::status status = kiln::status::passed;
};

using command = std::variant<create_build, add_runs, cancel_build, complete_build>;

result<std::vector<event>> decide(const state& s, const command& c);
void apply(state& s, const event& e);

// What a build's runs make of it: CANCELLED when it was cancelled, PASSED
// iff every run passed, else FAILED; running while any run is unfinished.
kiln::status outcome(bool cancelled, const std::vector<kiln::status>& runs);

} // namespace kiln::domain::build
