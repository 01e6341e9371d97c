#include "actors/system_view.hpp"

#include "events/streams.hpp"

namespace kiln::domain {

namespace {

template <class State, class Apply>
void fold(std::map<std::string, State>& into, const logged_commit& c, Apply apply_one) {
  auto& s = into[c.body.stream.value];
  for (auto& e : c.body.events)
    apply_one(s, e);
}

} // namespace

void system_view::apply(const logged_commit& c) {
  auto kind = streams::kind_of(c.body.stream);
  if (kind == "project")
    fold(projects, c, project::apply);
  else if (kind == "build")
    fold(builds, c, build::apply);
  else if (kind == "run")
    fold(runs, c, run::apply);
  else if (kind == "worker")
    fold(workers, c, worker::apply);
  seq = c.seq;
  time_unix_ns = c.body.meta.time_unix_ns;
}

} // namespace kiln::domain
