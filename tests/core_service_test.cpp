// The core answering JSON requests over the in-process bus.
#include "actors/core_service.hpp"
#include "core_fixture.hpp"
#include "events/in_process_bus.hpp"
#include "events/subjects.hpp"

#include <nlohmann/json.hpp>

#include "support/process.hpp"

#include <atomic>
#include <future>
#include <mutex>

using namespace kiln;
using namespace kiln::test;
using json = nlohmann::json;

namespace {

struct service_fixture {
  core_fixture f;
  bus::in_process_bus b;
  core::core_service service{b, *f.node, *f.log};

  json ask(const std::string& subject, json body, json extra = json::object()) {
    extra["body"] = std::move(body);
    return ask_raw(subject, extra.dump());
  }
  json ask_raw(const std::string& subject, std::string data) {
    std::promise<result<std::string>> p;
    auto fut = p.get_future();
    b.request(subject, std::move(data), std::chrono::seconds{20},
              [&](result<std::string> r) { p.set_value(std::move(r)); });
    auto r = fut.get();
    if (!r)
      FAIL("bus: " << r.error().code << " " << r.error().message);
    // The wire format: a head line, then the result's JSON text.
    auto [head_text, payload] = subjects::unframe(*r);
    auto head = json::parse(head_text);
    if (head.value("ok", false)) {
      CHECK_FALSE(head.contains("result"));
      head["result"] = json::parse(payload);
    }
    return head;
  }
};

} // namespace

TEST_CASE("core service: commands and queries as JSON over the bus") {
  service_fixture s;
  auto put = s.ask("kiln.cmd.put_project", {{"name", "app"}, {"yaml", chained_project}},
                   {{"principal", "alice"}});
  REQUIRE(put["ok"] == true);
  CHECK(put["seq"].get<std::uint64_t>() > 0);

  auto trig = s.ask("kiln.cmd.trigger_build",
                    {{"project", "app"}, {"trigger", "ci"}, {"params", {{"A", "1"}}}});
  REQUIRE(trig["ok"] == true);
  CHECK(trig["result"]["build"] == 1);
  CHECK(trig["result"]["runs"] == json::array({"unit-test", "lint"}));

  auto build = s.ask("kiln.qry.get_build", {{"project", "app"}, {"build", 1}},
                     {{"min_seq", trig["seq"]}});
  REQUIRE(build["ok"] == true);
  CHECK(build["result"]["status"] == "RUNNING");
  CHECK(build["result"]["params"]["A"] == "1");

  auto projects = s.ask("kiln.qry.list_projects", json::object());
  REQUIRE(projects["result"].size() == 1);
  CHECK(projects["result"][0]["name"] == "app");
  CHECK(projects["result"][0]["last_build"] == 1);
}

TEST_CASE("core service: bad requests and refusals come back as error codes") {
  service_fixture s;
  auto bad_yaml = s.ask("kiln.cmd.put_project", {{"name", "app"}, {"yaml", "timeout: 5\nbogus: 1\n"}});
  CHECK(bad_yaml["ok"] == false);
  CHECK(bad_yaml["error"] == "invalid_definition");
  CHECK(bad_yaml["message"].get<std::string>().find("line 2") != std::string::npos);

  auto missing = s.ask("kiln.cmd.trigger_build", {{"project", "app"}});
  CHECK(missing["error"] == "bad_request");
  CHECK(missing["message"] == "'trigger' is required");

  auto wrong_type = s.ask("kiln.qry.get_build", {{"project", "app"}, {"build", "seven"}});
  CHECK(wrong_type["error"] == "bad_request");

  // A held check-in's fields: a bad one is named, not ignored.
  auto bad_hold = s.ask("kiln.cmd.worker_checkin",
                        {{"name", "w1"}, {"token", "t"}, {"hold_ms", "soon"}});
  CHECK(bad_hold["error"] == "bad_request");
  CHECK(bad_hold["message"] == "'hold_ms' must be a non-negative integer");
  auto bad_known = s.ask("kiln.cmd.worker_checkin",
                         {{"name", "w1"}, {"token", "t"}, {"known_runs", "app/1/unit"}});
  CHECK(bad_known["error"] == "bad_request");
  CHECK(bad_known["message"] == "'known_runs' must be a list of strings");

  auto unknown = s.ask("kiln.cmd.explode", json::object());
  CHECK(unknown["error"] == "bad_request");

  auto garbage = s.ask_raw("kiln.cmd.put_project", "{not json");
  CHECK(garbage["error"] == "bad_request");

  auto none = s.ask("kiln.qry.get_build", {{"project", "nope"}, {"build", 1}});
  CHECK(none["error"] == "not_found");
}

TEST_CASE("core service: an event on the bus is already in the core's answers") {
  service_fixture s;
  REQUIRE(s.ask("kiln.cmd.put_project", {{"name", "app"}, {"yaml", chained_project}})["ok"] == true);
  // React to each RunQueued as a gateway would: ask for the run at once,
  // from the bus's delivery thread, with no min_seq.
  std::mutex mu;
  std::vector<std::string> missing;
  std::atomic<int> answered{0};
  auto sub = s.b.subscribe("kiln.evt.*.*.*.RunQueued", [&](const bus::message& m) {
    auto commit = json::parse(m.data);
    auto stream = commit["stream"].get<std::string>();  // run/app/<n>/<name>
    auto parts = stream.substr(4);
    auto n = parts.substr(parts.find('/') + 1);
    json body{{"project", "app"},
              {"build", std::stoul(n.substr(0, n.find('/')))},
              {"run", n.substr(n.find('/') + 1)}};
    s.b.request("kiln.qry.get_run", json{{"body", body}}.dump(), std::chrono::seconds{20},
                [&, stream](result<std::string> r) {
                  std::string reply = r ? *r : std::string{};
                  auto [head, payload] = subjects::unframe(reply);
                  auto h = json::parse(head, nullptr, false);
                  std::lock_guard lock{mu};
                  if (!r || h.is_discarded() || !h.value("ok", false))
                    missing.push_back(stream + ": " + (r ? std::string{head} : r.error().message));
                  ++answered;
                });
  });
  constexpr int builds = 40;
  for (int i = 0; i < builds; ++i)
    REQUIRE(s.ask("kiln.cmd.trigger_build", {{"project", "app"}, {"trigger", "ci"}})["ok"] == true);
  REQUIRE(wait_until([&] { return answered.load() == 2 * builds; }));
  std::lock_guard lock{mu};
  CHECK(missing == std::vector<std::string>{});
}
