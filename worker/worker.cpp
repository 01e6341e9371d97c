#include "worker/worker.hpp"

#include "worker/console_spool.hpp"
#include "worker/executor.hpp"
#include "worker/host_facts.hpp"
#include "worker/run_job.hpp"
#include "worker/server_link.hpp"

#include "events/base64.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kiln::worker {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path token_file(const fs::path& workdir) { return workdir / "worker.token"; }

status_result save_token(const fs::path& workdir, const std::string& token) {
  auto file = token_file(workdir);
  auto tmp = file;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  auto line = token + "\n";
  bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())
            && ::fsync(fd) == 0;
  if (fd >= 0)
    ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0)
    return kiln::error{"io", "cannot write " + file.string()};
  return kiln::ok;
}

namespace {

// At most this much console goes with the final status (as base64).
constexpr std::size_t max_console_tail = 64 * 1024;

// Codes with which the server says a run is no longer this worker's.
bool run_gone(const kiln::error& e) {
  return e.code == "finished" || e.code == "not_assigned_to_you" || e.code == "not_found";
}

} // namespace

struct active_run {
  run_definition def;
  std::atomic<bool> stop{false};
  std::atomic<bool> finished{false};
  std::string stop_message = "cancelled";
  std::size_t slot = 0;
  std::thread thread;
};

// Where runs execute, one at a time each: run folders and connections to
// the server are kept from run to run (emptying a folder and reusing a
// connection cost far less than new ones).
struct run_slot {
  bool taken = false;
  std::shared_ptr<server_link> reports, console;  // one per thread that uses them
};

struct worker::impl {
  worker_options o;
  std::unique_ptr<executor> exec, containers;
  std::string token;

  std::mutex mu;
  std::condition_variable cv;
  bool draining = false;
  std::atomic<bool> killing{false};
  std::atomic<bool> cut_poll{false};  // ends a check-in under way (drain, kill)
  std::map<std::string, std::shared_ptr<active_run>> runs;
  std::vector<run_slot> slots;

  server_link link(long timeout_ms) const {
    return server_link{o.servers, token, o.ca_file, timeout_ms};
  }

  // Waits `d`, or less when told to stop.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock{mu};
    cv.wait_for(lock, d, [this] { return killing.load(); });
  }

  // A request retried while no server answers (each URL in turn), with a
  // growing pause; gives up only when the worker is being killed.
  result<client::http_response> persist(server_link& l, std::string_view method,
                                        const std::string& target, const std::string& body,
                                        std::string_view type = "application/json") {
    auto wait = std::chrono::milliseconds{200};
    bool said = false;
    for (;;) {
      auto r = l.request(method, target, body, type);
      if (r && r->status < 500)
        return r;
      if (killing)
        return r ? kiln::error{"http_" + std::to_string(r->status), "server error"} : r.error();
      if (!said) {
        spdlog::warn("worker server=unreachable target={} detail=\"{}\" action=retry", target,
                     r ? "HTTP " + std::to_string(r->status) : r.error().message);
        said = true;
      }
      pause(wait);
      wait = std::min(wait * 2, std::chrono::milliseconds{2000});
    }
  }

  status_result register_self();
  int loop();
  void start_run(const std::string& id, run_definition def);
  void execute(const std::shared_ptr<active_run>& run);
  std::string store_artifacts(server_link& l, const std::string& target, const std::string& id,
                              const std::vector<artifact_file>& artifacts);
};

status_result worker::impl::register_self() {
  auto facts = read_host_facts(o.workdir);
  json body{{"name", o.name},
            {"tags", o.tags},
            {"concurrency", o.concurrency},
            {"host",
             {{"cpus", facts.cpus},
              {"memory_mb", facts.memory_mb},
              {"free_disk_mb", facts.free_disk_mb},
              {"kernel", facts.kernel},
              {"hostname", facts.hostname},
              {"kiln_version", o.version},
              {"executor", exec->name()},
              {"container_engine", containers ? containers->name() : ""}}}};
  auto l = link(30'000);
  auto r = persist(l, "POST", "/v1/workers", body.dump());
  if (!r)
    return r.error();
  if (r->status != 201 && r->status != 200) {
    auto e = client::api_error(*r);
    if (e.code == "already_exists")
      e.message = "worker '" + o.name + "' is registered but its token is not in "
                  + token_file(o.workdir).string() + "; delete the worker (DELETE /v1/workers/"
                  + o.name + ") or choose another --name";
    return e;
  }
  auto j = json::parse(r->body, nullptr, false);
  token = j.is_object() ? j.value("token", std::string{}) : std::string{};
  if (token.empty())
    return kiln::error{"bad_reply", "the server's registration reply holds no token"};
  if (auto saved = save_token(o.workdir, token); !saved)
    return saved;
  spdlog::info("worker registered name={} url={} note=\"an admin must enlist it\"", o.name,
               l.url());
  return kiln::ok;
}

int worker::impl::loop() {
  server_link l{o.servers, token, o.ca_file, static_cast<long>(o.poll_wait_s + 15) * 1000,
                &cut_poll};
  auto target = "/v1/workers/" + percent_encode(o.name) + "/checkin";
  std::optional<bool> enlisted;
  bool low_disk = false, outage = false;
  for (;;) {
    json active = json::array(), stopping = json::array();
    bool accepting = false, drain_now = false;
    cut_poll = false;  // before reading `draining`: a drain from now on cuts this poll
    {
      std::unique_lock lock{mu};
      for (auto it = runs.begin(); it != runs.end();) {
        if (it->second->finished) {
          it->second->thread.join();
          it = runs.erase(it);
          continue;
        }
        active.push_back(it->first);
        if (it->second->stop)
          stopping.push_back(it->first);
        ++it;
      }
      if (draining && runs.empty())
        return 0;
      // The scheduler keeps to the concurrency; this says only whether
      // the worker wants new runs at all.
      accepting = !draining;
      drain_now = draining;
    }
    auto free_mb = free_disk_mb(o.workdir);
    if ((free_mb < o.min_free_disk_mb) != low_disk) {
      low_disk = !low_disk;
      if (low_disk)
        spdlog::warn("worker disk=low free_mb={} min_mb={} action=\"no new runs\"", free_mb,
                     o.min_free_disk_mb);
      else
        spdlog::info("worker disk=ok free_mb={}", free_mb);
    }
    accepting = accepting && !low_disk;
    json body{{"active", active}, {"stopping", stopping}, {"accepting", accepting}};
    // While draining, short polls: the loop must notice its last run end.
    auto wait = drain_now ? 1u : o.poll_wait_s;
    auto r = l.request("POST", target + "?wait=" + std::to_string(wait), body.dump());
    if (!r || r->status >= 500) {
      if (killing)
        return 0;
      if (cut_poll)
        continue;  // cut short on purpose: go round with the new state
      if (!outage)
        spdlog::warn("worker server=unreachable detail=\"{}\" action=retry",
                     r ? "HTTP " + std::to_string(r->status) : r.error().message);
      outage = true;
      pause(std::chrono::seconds{1});
      continue;
    }
    if (outage)
      spdlog::info("worker server=reachable url={}", l.url());
    outage = false;
    if (r->status == 401 || r->status == 403 || r->status == 404) {
      auto e = client::api_error(*r);
      if (e.code == "not_enlisted") {
        if (enlisted != false)
          spdlog::info("worker waiting=enlist name={} note=\"an admin enlists it: POST "
                       "/v1/workers/{}/enlist\"", o.name, o.name);
        enlisted = false;
        if (drain_now)
          return 0;
        pause(std::chrono::seconds{1});
        continue;
      }
      spdlog::error("worker refused name={} error={} message=\"{}\"", o.name, e.code, e.message);
      return 1;
    }
    if (r->status != 200) {
      pause(std::chrono::seconds{1});
      continue;
    }
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_object())
      continue;
    if (enlisted != true)
      spdlog::info("worker enlisted name={} url={}", o.name, l.url());
    enlisted = true;
    for (auto& id : j.value("cancel", json::array())) {
      std::lock_guard lock{mu};
      if (auto it = runs.find(id.get<std::string>()); it != runs.end() && !it->second->stop) {
        it->second->stop_message = "cancelled";
        it->second->stop = true;
        spdlog::info("worker run=cancel id={}", it->first);
      }
    }
    for (auto& handed : j.value("runs", json::array())) {
      auto id = handed.value("run_id", std::string{});
      {
        std::lock_guard lock{mu};
        if (runs.count(id))
          continue;
        if (draining || runs.size() >= o.concurrency)
          continue;  // the server will hand it again, or requeue it
      }
      auto def = parse_run_definition(handed.value("rundef", json::object()).dump());
      if (!def) {
        spdlog::error("worker run=refused id={} reason=\"{}\"", id, def.error().message);
        continue;
      }
      start_run(id, std::move(*def));
    }
  }
}

void worker::impl::start_run(const std::string& id, run_definition def) {
  auto run = std::make_shared<active_run>();
  run->def = std::move(def);
  std::lock_guard lock{mu};
  auto free = std::find_if(slots.begin(), slots.end(), [](const run_slot& x) { return !x.taken; });
  run->slot = free - slots.begin();
  if (free == slots.end())
    slots.push_back({false, std::make_shared<server_link>(link(60'000)),
                     std::make_shared<server_link>(link(30'000))});
  slots[run->slot].taken = true;
  runs[id] = run;
  run->thread = std::thread{[this, run] {
    execute(run);
    {
      std::lock_guard lock{mu};
      slots[run->slot].taken = false;
    }
    run->finished = true;
    cv.notify_all();
  }};
}

// Uploads each artifact, retrying while the server cannot store it for up
// to --artifact-retry-for. Returns why one was not stored, or "" (also
// when the run is no longer this worker's: nothing is left to report).
std::string worker::impl::store_artifacts(server_link& l, const std::string& target,
                                          const std::string& id,
                                          const std::vector<artifact_file>& artifacts) {
  for (auto& a : artifacts) {
    auto path = target + "/artifacts/" + percent_encode(a.path, true);
    auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds{o.artifact_retry_s};
    auto wait = std::chrono::milliseconds{500};
    for (;;) {
      auto r = l.upload(path, a.file.string());
      if (r && r->status < 300)
        break;
      std::string why;
      if (r) {
        auto e = client::api_error(*r);
        if (r->status < 500 && run_gone(e))
          return {};
        why = "HTTP " + std::to_string(r->status) + " " + e.code + ": " + e.message;
        if (r->status < 500) {
          spdlog::warn("worker artifact=refused id={} path={} error={} message=\"{}\"", id, a.path,
                       e.code, e.message);
          return "artifact " + a.path + " was refused: " + why;
        }
      } else {
        why = r.error().message;
      }
      if (killing)
        return "artifact " + a.path + " was not stored: the worker was stopped";
      if (std::chrono::steady_clock::now() + wait > give_up_at) {
        spdlog::error("worker artifact=failed id={} path={} detail=\"{}\"", id, a.path, why);
        return "artifact " + a.path + " was not stored after "
               + std::to_string(o.artifact_retry_s) + " s of retries: " + why;
      }
      spdlog::warn("worker artifact=retry id={} path={} detail=\"{}\"", id, a.path, why);
      pause(wait);
      wait = std::min(wait * 2, std::chrono::milliseconds{5000});
    }
  }
  return {};
}

void worker::impl::execute(const std::shared_ptr<active_run>& run) {
  auto& def = run->def;
  auto id = def.run_id();
  auto target = run_target(def.project, def.build, def.run);
  std::shared_ptr<server_link> console_link;
  server_link* reports = nullptr;
  {
    std::lock_guard lock{mu};
    reports = slots[run->slot].reports.get();
    console_link = slots[run->slot].console;
  }
  auto& l = *reports;
  auto server_url = l.url();
  spdlog::info("worker run=start id={} executor={}", id,
               def.container && containers ? containers->name() : exec->name());

  // RUNNING is reported while the run's folders are made ready; the
  // script starts once the server has it (and only if the run is still
  // this worker's).
  auto started = std::async(std::launch::async, [&] {
    return persist(l, "POST", target + "/status", R"({"status":"RUNNING"})");
  });
  std::optional<bool> ours;
  auto still_ours = [&] {
    if (!ours) {
      auto r = started.get();
      auto e = r && r->status >= 400 ? client::api_error(*r) : kiln::error{};
      ours = !run_gone(e);
      if (!*ours)
        spdlog::warn("worker run=dropped id={} reason=\"{}\"", id, e.message);
    }
    return *ours;
  };

  auto slot = "slot-" + std::to_string(run->slot);
  auto root = o.workdir / "runs" / slot;
  auto spool_file = o.workdir / "runs" / (slot + ".console");
  // However the run ends, its slot is left empty (no secret stays behind).
  struct slot_cleaner {
    fs::path root, spool;
    ~slot_cleaner() {
      clear_run_dirs(root);
      ::truncate(spool.c_str(), 0);
    }
  } cleaner{root, spool_file};
  console_spool spool{spool_file, [this, target, id, base = def.console_offset,
                                   sl = console_link](
                                    std::uint64_t offset, std::string_view bytes) {
    auto at = std::to_string(base + offset);
    auto r = sl->request("POST", target + "/console?offset=" + at, bytes,
                         "application/octet-stream");
    if (!r)
      return killing ? send_result::gone : send_result::retry;
    if (r->status < 300)
      return send_result::sent;
    if (r->status >= 500)
      return send_result::retry;
    auto e = client::api_error(*r);
    spdlog::warn("worker console=refused id={} offset={} error={} message=\"{}\"", id, offset,
                 e.code, e.message);
    return send_result::gone;
  }};

  run_settings s;
  s.root = root;
  s.exec = exec.get();
  s.containers = containers.get();
  s.worker_name = o.name;
  s.server_url = server_url;
  s.may_start = still_ours;
  s.stop = &run->stop;
  s.volumes = o.workdir / "volumes";
  s.shared_volumes = o.shared_volumes;
  // A run is reported only once its artifacts are stored: it never PASSES
  // without them.
  s.store_artifacts = [&](const std::vector<artifact_file>& artifacts) {
    return store_artifacts(l, target, id, artifacts);
  };
  auto out = execute_run(def, s, spool);
  if (!still_ours())
    return;  // nothing ran; the spool is dropped with what it holds
  if (out.status == "CANCELLED") {
    std::lock_guard lock{mu};
    out.message = run->stop_message;
  }
  // The console's last bytes go with the final status: one request less
  // per run, and the core writes them before the run ends.
  auto tail = spool.finish(max_console_tail);

  for (auto& suite : out.tests) {
    json results = json::array();
    for (auto& t : suite.results)
      results.push_back({{"name", t.name}, {"status", t.status}, {"duration_ms", t.duration_ms},
                         {"message", t.message}});
    persist(l, "POST", target + "/tests", json{{"suite", suite.name}, {"results", results}}.dump());
  }
  json status{{"status", out.status}, {"exit_code", out.exit_code}, {"message", out.message}};
  if (!tail.bytes.empty())
    status["console"] = {{"offset", def.console_offset + tail.offset},
                         {"data", base64_encode(tail.bytes)}};
  auto r = persist(l, "POST", target + "/status", status.dump());
  if (r && r->status >= 400 && status.contains("console")
      && client::api_error(*r).code == "gap") {
    // The server lacks earlier bytes (it lost them): the status still counts.
    spdlog::warn("worker console=refused id={} offset={} error=gap", id, tail.offset);
    status.erase("console");
    r = persist(l, "POST", target + "/status", status.dump());
  }
  if (r && r->status >= 400) {
    auto e = client::api_error(*r);
    spdlog::warn("worker run=report-refused id={} error={} message=\"{}\"", id, e.code, e.message);
  }
  spdlog::info("worker run=end id={} status={} exit_code={} artifacts={}", id, out.status,
               out.exit_code, out.artifacts.size());
}

result<std::unique_ptr<worker>> worker::make(worker_options o) {
  if (o.servers.empty())
    return kiln::error{"bad_request", "--server needs at least one URL"};
  if (o.name.empty())
    return kiln::error{"bad_request", "--name is required"};
  if (o.concurrency == 0)
    return kiln::error{"bad_request", "--concurrency must be at least 1"};
  std::error_code ec;
  fs::create_directories(o.workdir, ec);
  if (ec)
    return kiln::error{"io", "cannot create the workdir " + o.workdir.string() + ": " + ec.message()};
  // What an earlier worker left (it may hold secrets): no run is ours yet.
  fs::remove_all(o.workdir / "runs", ec);
  fs::create_directories(o.workdir / "runs", ec);
  if (ec)
    return kiln::error{"io", "cannot create " + (o.workdir / "runs").string() + ": " + ec.message()};
  auto p = std::make_unique<impl>();
  executor_options eo{o.shim_program};
  auto kind = o.executor;
  auto engine = probe_container_engine();
  if (kind == "podman" || kind == "docker") {
    if (engine.empty())
      return kiln::error{"no_executor", kind + " is not installed or its engine does not answer"};
    kind.clear();  // image-less runs still need a sandbox
  }
  if (kind.empty()) {
    kind = default_executor_kind();
    if (kind == "host")
      spdlog::warn("worker executor=host reason=\"bubblewrap is not installed or does not work "
                   "here; runs are plain processes, not sandboxed\"");
  }
  auto e = make_executor(kind, eo);
  if (!e)
    return e.error();
  p->exec = std::move(*e);
  if (!engine.empty())
    if (auto c = make_executor(engine, eo))
      p->containers = std::move(*c);
  if (std::ifstream in{token_file(o.workdir)})
    std::getline(in, p->token);
  p->o = std::move(o);
  return std::unique_ptr<worker>{new worker{std::move(p)}};
}

worker::worker(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

worker::~worker() {
  impl_->killing = true;  // no more retries: reports that cannot be sent are dropped
  kill_runs();
  std::map<std::string, std::shared_ptr<active_run>> left;
  {
    std::lock_guard lock{impl_->mu};
    left.swap(impl_->runs);
  }
  for (auto& [id, r] : left)
    if (r->thread.joinable())
      r->thread.join();
}

int worker::run() {
  auto& p = *impl_;
  spdlog::info("worker starting name={} servers={} executor={} containers={} concurrency={} "
               "workdir={}", p.o.name, p.o.servers.size(), p.exec->name(),
               p.containers ? p.containers->name() : "none", p.o.concurrency, p.o.workdir.string());
  if (p.token.empty())
    if (auto r = p.register_self(); !r) {
      spdlog::error("worker register=failed error={} message=\"{}\"", r.error().code,
                    r.error().message);
      return 1;
    }
  auto code = p.loop();
  spdlog::info("worker stopped name={}", p.o.name);
  return code;
}

void worker::drain() {
  std::lock_guard lock{impl_->mu};
  if (!impl_->draining)
    spdlog::info("worker draining name={} runs={}", impl_->o.name, impl_->runs.size());
  impl_->draining = true;
  impl_->cut_poll = true;
  impl_->cv.notify_all();
}

void worker::kill_runs() {
  std::lock_guard lock{impl_->mu};
  impl_->draining = true;
  for (auto& [id, r] : impl_->runs)
    if (!r->stop) {
      r->stop_message = "killed: the worker was stopped";
      r->stop = true;
    }
  impl_->cut_poll = true;
  impl_->cv.notify_all();
}

} // namespace kiln::worker
