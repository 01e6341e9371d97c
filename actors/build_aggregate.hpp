#pragma once
// The build aggregate, pure. A build is frozen at creation: its trigger,
// params, ref/sha and the definition version it was made from; a later
// change to the definition never alters it.
//
//   ∅ ──create──> RUNNING ──complete(PASSED|FAILED|CANCELLED)──> done
//                 │  ▲  │
//                 └──┘  └──cancel──> CANCELLING ──complete(CANCELLED)──> done
//                 add_runs (a chained trigger fired; names stay unique)
//
// A completed build still takes its notifications' attempts: each is
// claimed (start_notification, a lease) before it is made and then
// finished with its outcome, so two cores never both send one attempt and
// one whose sender died is tried again once its lease has run out.
#include "events/event.hpp"
#include "events/result.hpp"

#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kiln::domain::build {

enum class errc {
  not_found,
  already_exists,
  not_due,           // a notification settled, under way, or waiting to retry
  finished,          // completed builds accept nothing more
  duplicate_run,     // a chained run's name is already in the build
  invalid_argument,
};
std::string_view to_string(errc e);

struct notification_state {
  std::uint32_t attempts = 0;
  std::int64_t lease_until_ms = 0;  // the latest attempt's; it is under way until then
  std::int64_t retry_at_ms = 0;
  bool in_flight = false;  // started and not finished
  bool delivered = false;
  bool abandoned = false;  // given up after its last attempt
  bool settled() const { return delivered || abandoned; }
};

struct state {
  bool exists = false;
  build_created created;  // the frozen facts
  std::vector<std::string> runs;  // in the order they joined
  bool cancelled = false;
  bool completed = false;
  kiln::status result = kiln::status::running;
  std::map<std::string, notification_state> notifications;  // planned or attempted
  bool pinned = false;  // kept whatever the retention policy says
  std::string pin_name;
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
  std::vector<notification_planned> notifications;  // what to tell of it
};
// Claims the next attempt of notification `id`, which must be planned, or
// a commit status ("status/..."), which the read model derives.
struct start_notification {
  std::string id;
  std::int64_t now_ms = 0;
  std::int64_t lease_ms = 60'000;
};
struct finish_notification {
  std::string id;
  std::uint32_t attempt = 1;
  bool delivered = false;
  std::string detail;
  std::int64_t retry_at_ms = 0;  // 0 when not delivered: give up
};

// Pinned (or promoted, with a name) builds keep their artifacts.
struct pin_build {
  std::string name;
  std::string reason;
};
struct unpin_build {
  std::string reason;
};

using command = std::variant<create_build, add_runs, cancel_build, complete_build,
                             start_notification, finish_notification, pin_build, unpin_build>;

result<std::vector<event>> decide(const state& s, const command& c);
// A NotificationStarted or NotificationFinished folded into its notification
// (the aggregate and the read model share it).
void fold(notification_state& n, const event& e);
void apply(state& s, const event& e);

// What a build's runs make of it: CANCELLED when it was cancelled, PASSED
// iff every run passed, else FAILED; running while any run is unfinished.
kiln::status outcome(bool cancelled, const std::vector<kiln::status>& runs);

} // namespace kiln::domain::build
