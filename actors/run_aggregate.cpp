#include "actors/run_aggregate.hpp"

#include "actors/aggregate.hpp"

namespace kiln::domain::run {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::illegal_transition: return "illegal_transition";
    case errc::not_assigned_to_you: return "not_assigned_to_you";
    case errc::finished: return "finished";
    case errc::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

bool state::finished() const {
  return status == kiln::status::passed || status == kiln::status::failed
         || status == kiln::status::cancelled || status == kiln::status::timeout;
}

namespace {

using events = std::vector<event>;

bool is_final(kiln::status s) {
  return s == kiln::status::passed || s == kiln::status::failed || s == kiln::status::cancelled
         || s == kiln::status::timeout;
}

// Checks shared by every command on an existing, unfinished run.
std::optional<error> must_be_live(const state& s) {
  if (!s.exists)
    return refuse(errc::not_found, "no such run");
  if (s.finished())
    return refuse(errc::finished, "the run is " + std::string{kiln::to_string(s.status)});
  return std::nullopt;
}

std::optional<error> must_hold(const state& s, const std::string& worker) {
  if (s.worker.empty() || s.worker != worker)
    return refuse(errc::not_assigned_to_you, "run is not assigned to worker '" + worker + "'");
  return std::nullopt;
}

result<events> decide_one(const state& s, const queue_run& c) {
  if (s.exists)
    return refuse(errc::already_exists, "run " + c.name + " exists");
  events out{run_queued{c.project, c.build, c.name, c.host_tag, c.rundef, 1, c.timeout_s}};
  if (!c.worker.empty())
    out.push_back(run_assigned{c.worker, 1});
  return out;
}

result<events> decide_one(const state& s, const assign_run& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (s.status != kiln::status::queued || !s.worker.empty())
    return refuse(errc::illegal_transition, "run is already held by '" + s.worker + "'");
  if (s.cancel_requested)
    return refuse(errc::illegal_transition, "run is being cancelled");
  return events{run_assigned{c.worker, s.attempt}};
}

result<events> decide_one(const state& s, const start_run& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (auto e = must_hold(s, c.worker))
    return *e;
  if (s.status == kiln::status::running)
    return events{};  // a retried report
  return events{run_started{c.worker}};
}

result<events> decide_one(const state& s, const complete_run& c) {
  if (!is_final(c.status))
    return refuse(errc::invalid_argument,
                  "a run completes PASSED, FAILED, CANCELLED or TIMEOUT, not "
                    + std::string{kiln::to_string(c.status)});
  if (s.exists && s.finished() && s.worker == c.worker && s.status == c.status
      && s.exit_code == c.exit_code)
    return events{};  // the same report again
  if (auto e = must_be_live(s))
    return *e;
  if (auto e = must_hold(s, c.worker))
    return *e;
  return events{run_completed{c.status, c.exit_code, c.message, c.console_size}};
}

result<events> decide_one(const state& s, const cancel_run& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (s.cancel_requested)
    return events{};
  if (s.worker.empty())  // nobody runs it: it ends here
    return events{run_cancel_requested{c.reason},
                  run_completed{kiln::status::cancelled, 0, "cancelled before it started: " + c.reason}};
  return events{run_cancel_requested{c.reason}};  // its worker kills it and reports
}

result<events> decide_one(const state& s, const time_out_run& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (s.status != kiln::status::running)
    return refuse(errc::illegal_transition, "only a RUNNING run can time out");
  return events{run_completed{kiln::status::timeout, -1, c.message}};
}

result<events> decide_one(const state& s, const lose_run& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (s.worker.empty())
    return refuse(errc::illegal_transition, "a queued run cannot be lost");
  if (!c.worker.empty() && c.worker != s.worker)
    return refuse(errc::not_assigned_to_you, "the run moved on to worker " + s.worker);
  if (s.cancel_requested)
    return events{run_completed{kiln::status::cancelled, 0, "cancelled; its worker was lost"}};
  if (s.attempt >= c.max_attempts)
    return events{run_completed{kiln::status::failed, -1,
                                "lost " + std::to_string(s.attempt) + " times: " + c.reason}};
  return events{run_requeued{c.reason, s.attempt + 1}};
}

result<events> decide_one(const state& s, const store_artifact& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (auto e = must_hold(s, c.worker))
    return *e;
  if (c.path.empty())
    return refuse(errc::invalid_argument, "an artifact needs a path");
  return events{run_artifact_stored{c.path, c.size, c.sha256}};
}

result<events> decide_one(const state& s, const expire_artifacts& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such run");
  if (!s.finished())
    return refuse(errc::illegal_transition, "a run's artifacts expire only once it has ended");
  if (s.artifacts_expired || s.artifacts.empty())
    return events{};
  return events{run_artifacts_expired{c.reason}};
}

result<events> decide_one(const state& s, const archive_console& c) {
  if (!s.exists)
    return refuse(errc::not_found, "no such run");
  if (!s.finished())
    return refuse(errc::illegal_transition, "a run's console is archived once it has ended");
  if (!s.console_object.empty())
    return events{};
  return events{run_console_archived{c.object, c.size, c.sha256}};
}

result<events> decide_one(const state& s, const report_tests& c) {
  if (auto e = must_be_live(s))
    return *e;
  if (auto e = must_hold(s, c.worker))
    return *e;
  return events{run_tests_reported{c.suite, c.results}};
}

} // namespace

result<std::vector<event>> decide(const state& s, const command& c) {
  return std::visit([&](auto& x) { return decide_one(s, x); }, c);
}

void apply(state& s, const event& e) {
  if (auto x = std::get_if<run_queued>(&e)) {
    s = state{};
    s.exists = true;
    s.project = x->project;
    s.build = x->build;
    s.name = x->name;
    s.host_tag = x->host_tag;
    s.rundef = x->rundef;
    s.attempt = x->attempt;
    s.timeout_s = x->timeout_s;
  } else if (auto x = std::get_if<run_assigned>(&e)) {
    s.worker = x->worker;
  } else if (std::get_if<run_started>(&e)) {
    s.status = kiln::status::running;
  } else if (auto x = std::get_if<run_completed>(&e)) {
    s.status = x->status;
    s.exit_code = x->exit_code;
    s.message = x->message;
  } else if (std::get_if<run_cancel_requested>(&e)) {
    s.cancel_requested = true;
  } else if (auto x = std::get_if<run_requeued>(&e)) {
    s.status = kiln::status::queued;
    s.worker.clear();
    s.attempt = x->attempt;
  } else if (auto x = std::get_if<run_artifact_stored>(&e)) {
    s.artifacts.push_back(*x);
  } else if (std::get_if<run_artifacts_expired>(&e)) {
    s.artifacts_expired = true;
  } else if (auto x = std::get_if<run_console_archived>(&e)) {
    s.console_object = x->object;
  } else if (auto x = std::get_if<run_tests_reported>(&e)) {
    s.tests.push_back(*x);
  }
}

} // namespace kiln::domain::run
