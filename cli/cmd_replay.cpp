// `kiln replay --data DIR [--at RFC3339|SEQ] [--project P]`: the state of
// projects, builds, runs and workers as of that moment, as JSON, folded with
// the same apply functions as the live system. Safe beside a running server.
#include "actors/system_view.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/data_dir.hpp"
#include "events/streams.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <regex>

namespace kiln::cli {

namespace {

using nlohmann::json;

// Unix nanoseconds of an RFC 3339 time ("2026-11-22T07:01:02.5+01:00").
std::int64_t parse_rfc3339(const std::string& s) {
  static const std::regex re{
    R"((\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.(\d{1,9}))?([Zz]|([+-])(\d{2}):(\d{2})))"};
  std::smatch m;
  if (!std::regex_match(s, m, re))
    throw usage_error("--at wants a sequence number or an RFC 3339 time, not '" + s + "'");
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  std::int64_t secs = timegm(&tm);
  if (m[10].matched) {
    auto offset = std::stoi(m[11]) * 3600 + std::stoi(m[12]) * 60;
    secs += m[10] == "+" ? -offset : offset;
  }
  std::int64_t nanos = 0;
  if (m[8].matched) {
    auto frac = m[8].str();
    frac.resize(9, '0');
    nanos = std::stoll(frac);
  }
  return secs * 1'000'000'000 + nanos;
}

json artifacts_json(const std::vector<run_artifact_stored>& as) {
  auto out = json::array();
  for (auto& a : as)
    out.push_back({{"path", a.path}, {"size", a.size}, {"sha256", a.sha256}});
  return out;
}

std::string build_status(const domain::build::state& b, const domain::system_view& v) {
  if (b.completed)
    return std::string{to_string(b.result)};
  if (b.cancelled)
    return "CANCELLING";
  bool all_queued = true;
  for (auto& name : b.runs) {
    auto it = v.runs.find(streams::run(b.created.project, b.created.number, name).value);
    if (it != v.runs.end() && it->second.status != status::queued)
      all_queued = false;
  }
  return all_queued ? "QUEUED" : "RUNNING";
}

json render(const domain::system_view& v, const std::optional<std::string>& only) {
  auto wanted = [&](const std::string& project) { return !only || *only == project; };
  json projects = json::array(), builds = json::array(), runs = json::array(),
       workers = json::array();
  for (auto& [id, p] : v.projects) {
    if (!p.exists || !wanted(p.name))
      continue;
    auto secrets = json::array();
    for (auto& [k, sealed] : p.secrets)
      secrets.push_back(k);
    projects.push_back({{"name", p.name}, {"deleted", p.deleted},
                        {"definition_version", p.definition_version},
                        {"content_sha256", p.content_sha256}, {"secrets", secrets},
                        {"last_build", p.last_build}});
  }
  for (auto& [id, b] : v.builds) {
    if (!b.exists || !wanted(b.created.project))
      continue;
    builds.push_back({{"project", b.created.project}, {"build", b.created.number},
                      {"status", build_status(b, v)}, {"trigger", b.created.trigger},
                      {"params", b.created.params}, {"ref", b.created.ref}, {"sha", b.created.sha},
                      {"reason", b.created.reason},
                      {"definition_version", b.created.definition_version}, {"runs", b.runs}});
  }
  for (auto& [id, r] : v.runs) {
    if (!r.exists || !wanted(r.project))
      continue;
    runs.push_back({{"project", r.project}, {"build", r.build}, {"name", r.name},
                    {"status", to_string(r.status)}, {"host_tag", r.host_tag},
                    {"worker", r.worker}, {"attempt", r.attempt}, {"exit_code", r.exit_code},
                    {"message", r.message}, {"cancel_requested", r.cancel_requested},
                    {"artifacts", artifacts_json(r.artifacts)}, {"test_suites", r.tests.size()}});
  }
  for (auto& [id, w] : v.workers) {
    if (!w.exists)
      continue;
    workers.push_back({{"name", w.name}, {"tags", w.tags}, {"concurrency", w.concurrency},
                       {"enlisted", w.enlisted}, {"online", w.online}, {"deleted", w.deleted}});
  }
  return {{"as_of", {{"seq", v.seq.value}, {"time_unix_ns", v.time_unix_ns}}},
          {"projects", projects}, {"builds", builds}, {"runs", runs}, {"workers", workers}};
}

} // namespace

int cmd_replay(int argc, char** argv) {
  args a{argc, argv, 2};
  a.allow_only({"data", "at", "project"});
  auto data = a.get("data");
  if (!data)
    throw usage_error("--data DIR is required");
  std::uint64_t at_seq = UINT64_MAX;
  std::int64_t at_time = INT64_MAX;
  if (auto at = a.get("at")) {
    if (!at->empty() && at->find_first_not_of("0123456789") == std::string::npos)
      at_seq = a.get_u64("at", 0);
    else
      at_time = parse_rfc3339(*at);
  }
  auto log = open_log_for_tool(*data, "replay");
  if (!log)
    return 2;
  domain::system_view view;
  global_seq after{0};
  for (bool done = false; !done;) {
    auto page = log->read_all(after, 1024);
    if (!page) {
      std::fprintf(stderr, "kiln replay: after seq %llu: %s\n",
                   static_cast<unsigned long long>(after.value), page.error().message.c_str());
      return 1;
    }
    if (page->empty())
      break;
    for (auto& c : *page) {
      if (c.seq.value > at_seq || c.body.meta.time_unix_ns > at_time) {
        done = true;
        break;
      }
      view.apply(c);
    }
    after = page->back().seq;
  }
  std::printf("%s\n", render(view, a.get("project")).dump(2).c_str());
  return 0;
}

} // namespace kiln::cli
