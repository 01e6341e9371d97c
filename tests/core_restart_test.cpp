// Kill a real core process mid-way (SIGKILL) and start again on its data:
// the state is what the log says, nothing acknowledged or queued is lost,
// no build number is reused.
#include "actors/core.hpp"
#include "actors/system_view.hpp"
#include "log_fixture.hpp"
#include "storage/secret_box.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <random>
#include <set>
#include <sstream>

using namespace kiln;
using namespace kiln::test;

TEST_CASE("core restart: SIGKILL mid-way loses no acknowledged build and reuses no number") {
  temp_dir dir;
  std::mt19937 rng{std::random_device{}()};
  std::set<std::uint32_t> acknowledged;
  for (int round = 0; round < 2; ++round) {
    child_process child{{{CORE_DRIVER_BINARY, dir.path().string()}}};
    auto kill_after = 10 + rng() % 40;
    while (acknowledged.size() < kill_after * (round + 1)) {
      auto line = child.read_line();
      REQUIRE(line);
      std::istringstream in{*line};
      std::string word;
      std::uint32_t n = 0;
      in >> word >> n;
      REQUIRE(word == "built");
      CHECK(acknowledged.insert(n).second);  // never the same number twice
    }
    child.signal(SIGKILL);
    REQUIRE(child.wait() == 128 + SIGKILL);
  }

  auto log = open_log(dir.path() / "log");
  auto box = storage::secret_box::load_or_create(dir.path() / "secret.key");
  REQUIRE(box);
  core::core node{*log, *box};
  REQUIRE(node.start());

  // The process managers finish what was under way: every number handed out
  // becomes a build with all its runs queued.
  std::uint32_t last = 0;
  REQUIRE(wait_until([&] {
    auto projects = node.read(core::list_projects{});
    if (!projects)
      return false;
    last = std::get<std::vector<core::project_info>>(*projects).at(0).last_build;
    auto builds = node.read(core::list_builds{"app", 100000, 0});
    if (!builds)
      return false;
    auto& list = std::get<std::vector<domain::build_summary>>(*builds);
    if (list.size() != last)
      return false;
    for (auto& b : list)
      if (b.runs.size() < b.facts.runs.size())
        return false;
    return true;
  }));
  INFO("numbers handed out: " << last << ", acknowledged: " << acknowledged.size());
  CHECK(last >= *acknowledged.rbegin());
  for (std::uint32_t n = 1; n <= last; ++n) {
    auto b = node.read(core::get_build{"app", n});
    REQUIRE(b);  // no gap
  }
  auto next = node.call(core::trigger_build{"app", "ci", {}, "", "", "after restart", 0});
  REQUIRE(next);
  CHECK(std::get<core::build_ref>(*next).build == last + 1);

  // The live projections equal a replay of the log.
  auto seq = log->last_seq();
  domain::system_view replayed;
  for (global_seq after{0};;) {
    auto commits = log->read_all(after, 4096);
    REQUIRE(commits);
    for (auto& c : *commits)
      replayed.apply(c);
    if (commits->empty())
      break;
    after = commits->back().seq;
  }
  for (auto& [stream, r] : replayed.runs) {
    auto key = domain::parse_run_stream(stream);
    REQUIRE(key);
    auto live = node.read(core::get_run{*key}, seq);
    REQUIRE(live);
    auto& d = std::get<core::run_detail>(*live);
    CHECK(d.summary.status == r.status);
    CHECK(d.summary.worker == r.worker);
    CHECK(d.summary.attempt == r.attempt);
  }
  for (auto& [stream, b] : replayed.builds) {
    auto live = node.read(core::get_build{b.created.project, b.created.number}, seq);
    REQUIRE(live);
    auto& lb = std::get<domain::build_summary>(*live);
    CHECK(lb.completed == b.completed);
    CHECK(lb.run_names() == b.runs);
  }
}
