#pragma once
// A core on a real RocksDB log in a temp dir, and helpers to drive it.
#include "actors/core.hpp"
#include "log_fixture.hpp"
#include "sample_projects.hpp"
#include "storage/secret_box.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace kiln::test {


struct core_options {
  core::core_config config{};
};

struct core_fixture {
  temp_dir dir;
  std::unique_ptr<storage::rocksdb_event_log> log;
  std::unique_ptr<storage::secret_box> box;
  std::unique_ptr<core::core> node;
  core::core_config config;

  explicit core_fixture(core_options o = {}) : config(o.config) {
    log = open_log(dir.path() / "log");
    auto b = storage::secret_box::load_or_create(dir.path() / "secret.key");
    REQUIRE(b);
    box = std::make_unique<storage::secret_box>(std::move(*b));
    start();
  }
  ~core_fixture() { node.reset(); }

  void start() {
    node = std::make_unique<core::core>(*log, *box, config);
    auto started = node->start();
    REQUIRE(started);
  }
  void restart() {
    node.reset();
    log->close();
    log.reset();
    log = open_log(dir.path() / "log");
    start();
  }

  template <class T>
  T call(core::request r, core::request_context ctx = {}) {
    auto out = node->call(std::move(r), std::move(ctx));
    if (!out)
      FAIL("request failed: " << out.error().code << ": " << out.error().message);
    auto x = std::get_if<T>(&*out);
    REQUIRE(x);
    return *x;
  }
  // The error code a request is refused with ("" when it succeeds).
  std::string refused(core::request r, core::request_context ctx = {}) {
    auto out = node->call(std::move(r), std::move(ctx));
    return out ? std::string{} : out.error().code;
  }

  template <class T>
  T read(core::query q) {
    auto out = node->read(std::move(q));
    if (!out)
      FAIL("query failed: " << out.error().code << ": " << out.error().message);
    auto x = std::get_if<T>(&*out);
    REQUIRE(x);
    return *x;
  }

  domain::build_summary build(const std::string& p, std::uint32_t n) {
    return read<domain::build_summary>(core::get_build{p, n});
  }

  // Polls until build n's run statuses satisfy `pred`.
  bool wait_build(const std::string& p, std::uint32_t n,
                  const std::function<bool(const domain::build_summary&)>& pred) {
    return wait_until([&] {
      auto out = node->read(core::get_build{p, n});
      return out && pred(std::get<domain::build_summary>(*out));
    });
  }

  // Registers and enlists a worker; returns its token.
  std::string add_worker(const std::string& name, std::vector<std::string> tags,
                         std::uint32_t concurrency = 1) {
    auto t = call<core::worker_token>(core::register_worker{name, std::move(tags), concurrency, "{}"});
    call<core::receipt>(core::enlist_worker{name});
    return t.token;
  }

  // Checks in until the worker is handed at least `n` runs.
  std::vector<core::handed_run> take(const std::string& worker, const std::string& token,
                                     std::size_t n = 1) {
    std::vector<core::handed_run> runs;
    wait_until([&] {
      auto out = node->call(core::worker_checkin{worker, token});
      if (!out)
        return false;
      runs = std::get<core::checkin_reply>(*out).runs;
      return runs.size() >= n;
    });
    return runs;
  }

  void finish(const core::handed_run& h, const std::string& worker,
              status st = status::passed) {
    call<core::receipt>(core::report_run{h.run, worker, status::running, 0, ""});
    call<core::receipt>(core::report_run{h.run, worker, st, st == status::passed ? 0 : 1, ""});
  }
};

} // namespace kiln::test
