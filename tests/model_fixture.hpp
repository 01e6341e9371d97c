#pragma once
// Builds a read model from hand-made commits, for pure tests of the
// scheduler and the process managers.
#include "actors/read_model.hpp"
#include "events/streams.hpp"

#include <string>
#include <vector>

namespace kiln::test {

struct model_builder {
  domain::read_model model;
  std::uint64_t seq = 0;
  std::int64_t now = 1'700'000'000'000'000'000;

  void add(const stream_id& stream, std::vector<event> events) {
    logged_commit c;
    c.seq = global_seq{++seq};
    c.body.stream = stream;
    c.body.first_version = stream_version{1};
    c.body.meta.time_unix_ns = now;
    c.body.events = std::move(events);
    model.apply(c);
  }

  void project(const std::string& name, const std::string& yaml) {
    add(streams::project(name), {project_created{name}, project_definition_updated{1, yaml, "h"}});
  }

  // A build with `runs` (all queued on `tag`), at priority `priority`.
  void build(const std::string& p, std::uint32_t n, std::vector<std::string> runs,
             const std::string& tag = "linux", std::int32_t priority = 0) {
    build_number_allocated a;
    a.number = n;
    a.trigger = "ci";
    add(streams::project(p), {a});
    build_created b;
    b.project = p;
    b.number = n;
    b.trigger = "ci";
    b.runs = runs;
    b.priority = priority;
    add(streams::build(p, n), {b});
    for (auto& r : runs)
      add(streams::run(p, n, r), {run_queued{p, n, r, tag, "{}", 1, 60}});
  }

  void worker(const std::string& name, std::vector<std::string> tags, std::uint32_t concurrency,
              bool online = true) {
    std::vector<event> events{worker_registered{name, tags, concurrency, "{}", "t"}, worker_enlisted{}};
    if (online)
      events.push_back(worker_online{});
    add(streams::worker(name), events);
  }

  void assign(const std::string& p, std::uint32_t n, const std::string& run, const std::string& w) {
    add(streams::run(p, n, run), {run_assigned{w, 1}});
  }
};

inline const char* simple_yaml = R"(timeout: 5
triggers:
  - name: ci
    type: simple
    runs:
      - name: a
        host-tag: linux
        script: s
scripts:
  s: echo
)";

// simple_yaml with more top-level keys (`top`, whole lines) after its first line.
inline std::string simple_yaml_with(const std::string& top) {
  std::string base = simple_yaml;
  return base.substr(0, base.find('\n') + 1) + top + base.substr(base.find('\n') + 1);
}

} // namespace kiln::test
