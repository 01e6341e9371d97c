// The gateway's long-lived answers against a scripted core on a real
// in-process bus: what the core is asked, and with which min_seq, is what
// these tests see. A console follow must end with its run even when the
// run's end was heard before the follow began (the core answering it may
// lag) or never heard at all; a worker's long poll asks the core again
// only for runs assigned to that worker; a plain read asks for a core
// holding what the gateway has heard.
#include "events/in_process_bus.hpp"
#include "events/subjects.hpp"
#include "gateway/gateway.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// What the gateway answered: a whole response, or a stream's bytes and end.
struct recorded : gateway::responder::sink, std::enable_shared_from_this<recorded> {
  struct recorded_stream final : gateway::body_stream {
    std::shared_ptr<recorded> owner;
    bool write(std::string bytes) override {
      std::lock_guard lock{owner->mu};
      owner->body += bytes;
      return !owner->finished;
    }
    std::size_t pending() const override { return 0; }
    void wait_below(std::size_t) override {}
    void finish() override {
      std::lock_guard lock{owner->mu};
      owner->finished = true;
    }
    bool closed() const override {
      std::lock_guard lock{owner->mu};
      return owner->finished;
    }
    void on_close(std::function<void()>) override {}
  };

  std::mutex mu;
  int status = 0;
  std::string body;
  bool finished = false;

  void send(gateway::http_response r) override {
    std::lock_guard lock{mu};
    status = r.status;
    body = r.body;
    finished = true;
  }
  std::shared_ptr<gateway::body_stream> stream(gateway::http_response head) override {
    auto s = std::make_shared<recorded_stream>();
    s->owner = shared_from_this();
    std::lock_guard lock{mu};
    status = head.status;
    return s;
  }
  bool done() {
    std::lock_guard lock{mu};
    return finished;
  }
  int status_code() {
    std::lock_guard lock{mu};
    return status;
  }
  std::string text() {
    std::lock_guard lock{mu};
    return body;
  }
};

// The core's side of the bus, scripted: who is who, each run's console and
// whether it ended (per the min_seq a read asks for), and check-ins.
struct scripted_core {
  bus::bus& b;
  std::mutex mu;
  // run path -> the commit a core must hold to know the run ended; a run
  // not named has not ended
  std::map<std::string, std::uint64_t> ends_at;
  std::map<std::string, std::vector<std::uint64_t>> read_min_seqs;  // per run
  std::vector<std::uint64_t> get_run_min_seqs;
  std::atomic<int> checkins{0};
  std::atomic<bool> hand_out{false};
  std::unique_ptr<bus::subscription> qry, cmd;

  explicit scripted_core(bus::bus& bus) : b(bus) {
    qry = b.subscribe("kiln.qry.>", [this](const bus::message& m) { answer(m); });
    cmd = b.subscribe("kiln.cmd.>", [this](const bus::message& m) { answer(m); });
  }

  void reply(const bus::message& m, const json& result) {
    b.publish(m.reply_to, subjects::frame(R"({"ok":true,"seq":0})", result.dump()));
  }
  // A console read: the result in the head, the bytes after it.
  void reply_console(const bus::message& m, const json& result, const std::string& bytes) {
    b.publish(m.reply_to,
              subjects::frame(json{{"ok", true}, {"seq", 0}, {"result", result}}.dump(), bytes));
  }

  void answer(const bus::message& m) {
    auto j = json::parse(subjects::unframe(m.data).first);
    auto body = j["body"];
    std::uint64_t min_seq = j.value("min_seq", std::uint64_t{0});
    if (m.subject == "kiln.qry.authenticate") {
      auto token = body.value("token", "");
      if (token == "kw.w2.secret")
        return reply(m, {{"kind", "worker"}, {"id", "w2"}});
      return reply(m, {{"kind", "api"}, {"id", "admin"}, {"scope", "admin"}, {"project", ""}});
    }
    if (m.subject == "kiln.qry.read_console") {
      auto run = body.value("project", "") + "/" + std::to_string(body.value("build", 0)) + "/"
                 + body.value("run", "");
      bool ended;
      {
        std::lock_guard lock{mu};
        read_min_seqs[run].push_back(min_seq);
        auto at = ends_at.find(run);
        ended = at != ends_at.end() && min_seq >= at->second;
      }
      std::string bytes = body.value("offset", 0) == 0 ? "hello\n" : "";
      return reply_console(m, {{"offset", body.value("offset", 0)}, {"size", 6}, {"finished", ended},
                               {"status", ended ? "PASSED" : "RUNNING"}},
                           bytes);
    }
    if (m.subject == "kiln.qry.get_run") {
      {
        std::lock_guard lock{mu};
        get_run_min_seqs.push_back(min_seq);
      }
      return reply(m, {{"name", body.value("run", "")}, {"status", "PASSED"}});
    }
    if (m.subject == "kiln.cmd.worker_checkin") {
      ++checkins;
      json runs = json::array();
      if (hand_out)
        runs.push_back({{"run_id", "app/1/t"}, {"rundef", json::object()}});
      return reply(m, {{"runs", runs}, {"cancel", json::array()}});
    }
    b.publish(m.reply_to, R"({"ok":false,"error":"not_implemented","message":"not scripted"})");
  }

  std::vector<std::uint64_t> min_seqs(const std::string& run) {
    std::lock_guard lock{mu};
    return read_min_seqs[run];
  }
};

gateway::http_request get(const std::string& target, const std::string& token = "kt.admin.secret") {
  gateway::http_request r;
  r.method = "GET";
  r.target = target;
  r.headers = {{"authorization", "Bearer " + token}};
  return r;
}

// Once this marker arrives, whatever was published before it has been
// delivered (one delivery thread, in order).
void settle(bus::bus& b) {
  std::atomic<bool> seen{false};
  auto sub = b.subscribe("test.settled", [&](const bus::message&) { seen = true; });
  b.publish("test.settled", "");
  REQUIRE(wait_until([&] { return seen.load(); }));
}

// A commit of run app/1/t as the hub hears it: one event of `type`.
std::string commit_of(std::uint64_t seq, const std::string& type, const json& data) {
  return json{{"events", {{{"type", type}, {"data", data}}}}, {"seq", seq}, {"stream", "run/app/1/t"}}
    .dump();
}
std::string run_commit(std::uint64_t seq, const std::string& type, const std::string& worker = "w1") {
  return commit_of(seq, type, json{{"worker", worker}});
}

// A follow of run app/1/other, once its first read is in: it makes the
// gateway listen for runs' ends.
std::shared_ptr<recorded> follow_other(gateway::gateway& gw, scripted_core& core) {
  auto follow = std::make_shared<recorded>();
  gw.handle(get("/v1/projects/app/builds/1/runs/other/console?follow=1"), gateway::responder{follow});
  REQUIRE(wait_until([&] { return !core.min_seqs("app/1/other").empty(); }));
  return follow;
}

} // namespace

TEST_CASE("a console follow ends with its run when the end was heard before the follow began",
          "[gateway][live]") {
  bus::in_process_bus b;
  scripted_core core{b};
  gateway::gateway gw{b, {}};
  auto other = follow_other(gw, core);

  // Run t ends (commit 42); a core whose copy lags would still call it running.
  {
    std::lock_guard lock{core.mu};
    core.ends_at["app/1/t"] = 42;
  }
  b.publish("kiln.evt.app.1.t.RunCompleted", run_commit(42, "RunCompleted"));
  settle(b);

  auto follow = std::make_shared<recorded>();
  gw.handle(get("/v1/projects/app/builds/1/runs/t/console?follow=1"), gateway::responder{follow});
  REQUIRE(wait_until([&] { return follow->done(); }, 10s));
  CHECK(follow->text() == "hello\n");
  auto asked = core.min_seqs("app/1/t");
  REQUIRE_FALSE(asked.empty());
  CHECK(asked.front() >= 42);
  CHECK_FALSE(other->done());
}

TEST_CASE("a console follow that heard every byte its run ended with ends without another read",
          "[gateway][live]") {
  bus::in_process_bus b;
  scripted_core core{b};
  gateway::gateway gw{b, {}};
  auto completed = [](std::uint64_t seq, std::uint64_t console_size) {
    return commit_of(seq, "RunCompleted", json{{"status", "PASSED"}, {"console_size", console_size}});
  };
  auto chunk = [&](std::uint64_t offset, const std::string& bytes) {
    b.publish(subjects::console_subject("app", 1, "t"),
              subjects::frame(json{{"run", "app/1/t"}, {"offset", offset}}.dump(), bytes));
  };

  SECTION("the end names the size the live chunks brought: no second read") {
    auto follow = std::make_shared<recorded>();
    auto r = get("/v1/projects/app/builds/1/runs/t/console?follow=1");
    r.headers.emplace_back("accept", "text/event-stream");
    gw.handle(r, gateway::responder{follow});
    REQUIRE(wait_until([&] { return follow->text().find("hello") != std::string::npos; }));
    chunk(6, "bye\n");
    REQUIRE(wait_until([&] { return follow->text().find("bye") != std::string::npos; }));
    b.publish("kiln.evt.app.1.t.RunCompleted", completed(42, 10));
    REQUIRE(wait_until([&] { return follow->done(); }, 10s));
    CHECK(follow->text().find("event: end") != std::string::npos);
    CHECK(follow->text().find(R"("status":"PASSED")") != std::string::npos);
    CHECK(follow->text().find(R"("size":10)") != std::string::npos);
    CHECK(core.min_seqs("app/1/t").size() == 1);
  }
  SECTION("bytes the follow has not heard: it reads them from a core holding the end") {
    {
      std::lock_guard lock{core.mu};
      core.ends_at["app/1/t"] = 42;
    }
    auto follow = std::make_shared<recorded>();
    gw.handle(get("/v1/projects/app/builds/1/runs/t/console?follow=1"), gateway::responder{follow});
    REQUIRE(wait_until([&] { return follow->text() == "hello\n"; }));
    b.publish("kiln.evt.app.1.t.RunCompleted", completed(42, 10));
    REQUIRE(wait_until([&] { return follow->done(); }, 10s));
    auto asked = core.min_seqs("app/1/t");
    REQUIRE(asked.size() == 2);
    CHECK(asked.back() >= 42);
  }
}

TEST_CASE("a console follow whose run's end is never heard reads again and ends",
          "[gateway][live]") {
  bus::in_process_bus b;
  scripted_core core{b};
  gateway::gateway_options o;
  o.follow_recheck = 200ms;
  gateway::gateway gw{b, o};
  auto follow = std::make_shared<recorded>();
  gw.handle(get("/v1/projects/app/builds/1/runs/t/console?follow=1"), gateway::responder{follow});
  REQUIRE(wait_until([&] { return !core.min_seqs("app/1/t").empty(); }));
  CHECK_FALSE(follow->done());
  // The run ends; its event is lost on the way (no publish).
  {
    std::lock_guard lock{core.mu};
    core.ends_at["app/1/t"] = 0;
  }
  REQUIRE(wait_until([&] { return follow->done(); }, 20s));
  CHECK(follow->text() == "hello\n");
}

TEST_CASE("a worker's long poll asks the core again only for a run assigned to that worker",
          "[gateway][live]") {
  bus::in_process_bus b;
  scripted_core core{b};
  gateway::gateway gw{b, {}};
  gateway::http_request r;
  r.method = "POST";
  r.target = "/v1/workers/w2/checkin?wait=20";
  r.headers = {{"authorization", "Bearer kw.w2.secret"}, {"content-type", "application/json"}};
  r.body = R"({"active":[],"stopping":[],"accepting":true})";
  auto poll = std::make_shared<recorded>();
  gw.handle(r, gateway::responder{poll});
  REQUIRE(wait_until([&] { return core.checkins.load() == 1; }));

  b.publish("kiln.evt.app.1.x.RunAssigned", run_commit(50, "RunAssigned", "w1"));
  settle(b);
  core.hand_out = true;
  b.publish("kiln.evt.app.1.t.RunAssigned", run_commit(51, "RunAssigned", "w2"));
  REQUIRE(wait_until([&] { return poll->done(); }, 10s));
  CHECK(poll->status_code() == 200);
  CHECK(json::parse(poll->text())["runs"].size() == 1);
  // The first check-in, and the one for w2's run: w1's run woke nothing.
  CHECK(core.checkins.load() == 2);
}

TEST_CASE("a read after a run's end was heard asks for a core holding that end",
          "[gateway][live]") {
  bus::in_process_bus b;
  scripted_core core{b};
  gateway::gateway gw{b, {}};
  auto follow = follow_other(gw, core);
  b.publish("kiln.evt.app.1.t.RunCompleted", run_commit(42, "RunCompleted"));
  settle(b);

  // Whoever saw run t end (this follow's client, another's) and reads it
  // now must not be told it runs by a core whose copy is behind.
  auto read = std::make_shared<recorded>();
  gw.handle(get("/v1/projects/app/builds/1/runs/t"), gateway::responder{read});
  REQUIRE(wait_until([&] { return read->done(); }, 10s));
  CHECK(read->status_code() == 200);
  std::lock_guard lock{core.mu};
  REQUIRE(core.get_run_min_seqs.size() == 1);
  CHECK(core.get_run_min_seqs.front() >= 42);
}
