// read_model::encode / decode: a compact binary form of the projections, so
// that a core starts from it plus the log's tail instead of the whole log.
// Only what cannot be derived is written: the queue, the workers' holds, the
// open builds, those with notifications pending and the consoles to archive
// are rebuilt from the runs and builds.
#include "actors/read_model.hpp"

#include <cstring>
#include <stdexcept>

namespace kiln::domain {

namespace {

// 3: cron slots and git refs; 4: builds' notifications; 5: pins, artifact counts;
// 6: archived consoles.
constexpr std::string_view magic = "KRM6";

class writer {
 public:
  void u64(std::uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    u64(s.size());
    out.append(s);
  }
  void strs(const std::vector<std::string>& v) {
    u64(v.size());
    for (auto& s : v)
      str(s);
  }
  void params(const param_map& m) {
    u64(m.size());
    for (auto& [k, v] : m) {
      str(k);
      str(v);
    }
  }
  std::string out;
};

struct truncated : std::runtime_error {
  truncated() : std::runtime_error("truncated") {}
};

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty())
        throw truncated{};
      auto b = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80))
        return v;
    }
    throw truncated{};
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u64()); }
  std::string str() {
    auto n = u64();
    if (n > in_.size())
      throw truncated{};
    std::string s{in_.substr(0, n)};
    in_.remove_prefix(n);
    return s;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v(u64());
    for (auto& s : v)
      s = str();
    return v;
  }
  param_map params() {
    param_map m;
    for (auto n = u64(); n > 0; --n) {
      auto k = str();
      m.emplace(std::move(k), str());
    }
    return m;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

void put_run(writer& w, const run_summary& r) {
  w.str(r.name);
  w.str(r.host_tag);
  w.u64(static_cast<std::uint8_t>(r.status));
  w.str(r.worker);
  w.u64(r.attempt);
  w.u64(r.timeout_s);
  w.i64(r.exit_code);
  w.u64(r.cancel_requested);
  w.u64(r.queued_seq.value);
  w.i64(r.queued_ns);
  w.i64(r.started_ns);
  w.i64(r.finished_ns);
  w.u64(r.artifacts);
  w.u64(r.artifacts_expired);
  w.u64(r.console_archived);
}

run_summary get_run(reader& r) {
  run_summary x;
  x.name = r.str();
  x.host_tag = r.str();
  x.status = static_cast<kiln::status>(r.u64());
  x.worker = r.str();
  x.attempt = r.u32();
  x.timeout_s = r.u32();
  x.exit_code = static_cast<std::int32_t>(r.i64());
  x.cancel_requested = r.u64() != 0;
  x.queued_seq = global_seq{r.u64()};
  x.queued_ns = r.i64();
  x.started_ns = r.i64();
  x.finished_ns = r.i64();
  x.artifacts = r.u32();
  x.artifacts_expired = r.u64() != 0;
  x.console_archived = r.u64() != 0;
  return x;
}

void put_build(writer& w, const build_summary& b) {
  w.u64(b.number);
  auto& f = b.facts;
  w.str(f.trigger);
  w.params(f.params);
  w.str(f.ref);
  w.str(f.sha);
  w.str(f.reason);
  w.u64(f.definition_version);
  w.strs(f.runs);
  w.i64(f.priority);
  w.u64(f.rerun_of);
  w.u64(b.added.size());
  for (auto& a : b.added) {
    w.str(a.trigger);
    w.str(a.parent_run);
    w.strs(a.runs);
  }
  w.u64(b.runs.size());
  for (auto& r : b.runs)
    put_run(w, r);
  w.u64(b.cancelled);
  w.u64(b.completed);
  w.u64(static_cast<std::uint8_t>(b.result));
  w.i64(b.created_ns);
  w.i64(b.completed_ns);
  w.u64(b.notifications.size());
  for (auto& [id, n] : b.notifications) {
    w.str(id);
    w.str(n.kind);
    w.str(n.spec);
    w.str(n.run);
    w.u64(n.order);
    w.u64(n.state.attempts);
    w.i64(n.state.lease_until_ms);
    w.i64(n.state.retry_at_ms);
    w.u64(n.state.in_flight | n.state.delivered << 1 | n.state.abandoned << 2 | n.superseded << 3);
    w.str(n.detail);
  }
  w.u64(b.pinned);
  w.str(b.pin_name);
}

build_summary get_build(reader& r, const std::string& project) {
  build_summary b;
  b.project = project;
  b.number = r.u32();
  auto& f = b.facts;
  f.project = project;
  f.number = b.number;
  f.trigger = r.str();
  f.params = r.params();
  f.ref = r.str();
  f.sha = r.str();
  f.reason = r.str();
  f.definition_version = r.u32();
  f.runs = r.strs();
  f.priority = static_cast<std::int32_t>(r.i64());
  f.rerun_of = r.u32();
  b.added.resize(r.u64());
  for (auto& a : b.added) {
    a.trigger = r.str();
    a.parent_run = r.str();
    a.runs = r.strs();
  }
  b.runs.resize(r.u64());
  for (auto& x : b.runs)
    x = get_run(r);
  b.cancelled = r.u64() != 0;
  b.completed = r.u64() != 0;
  b.result = static_cast<kiln::status>(r.u64());
  b.created_ns = r.i64();
  b.completed_ns = r.i64();
  for (auto count = r.u64(); count > 0; --count) {
    auto& n = b.notifications[r.str()];
    n.kind = r.str();
    n.spec = r.str();
    n.run = r.str();
    n.order = r.u32();
    n.state.attempts = r.u32();
    n.state.lease_until_ms = r.i64();
    n.state.retry_at_ms = r.i64();
    auto flags = r.u64();
    n.state.in_flight = flags & 1;
    n.state.delivered = flags & 2;
    n.state.abandoned = flags & 4;
    n.superseded = flags & 8;
    n.detail = r.str();
  }
  b.pinned = r.u64() != 0;
  b.pin_name = r.str();
  return b;
}

void put_allocation(writer& w, const build_number_allocated& a) {
  w.u64(a.number);
  w.str(a.trigger);
  w.u64(a.definition_version);
  w.params(a.params);
  w.str(a.ref);
  w.str(a.sha);
  w.str(a.reason);
  w.i64(a.priority);
  w.u64(a.rerun_of);
  w.strs(a.only_runs);
}

build_number_allocated get_allocation(reader& r) {
  build_number_allocated a;
  a.number = r.u32();
  a.trigger = r.str();
  a.definition_version = r.u32();
  a.params = r.params();
  a.ref = r.str();
  a.sha = r.str();
  a.reason = r.str();
  a.priority = static_cast<std::int32_t>(r.i64());
  a.rerun_of = r.u32();
  a.only_runs = r.strs();
  return a;
}

} // namespace

std::string read_model::encode() const {
  writer w;
  w.out.append(magic);
  w.u64(seq_.value);
  w.u64(projects_.size());
  for (auto& [name, p] : projects_) {
    w.str(name);
    w.u64(p.deleted);
    w.u64(p.definition_version);
    w.str(p.content_sha256);
    w.str(p.yaml);
    w.strs({p.secret_keys.begin(), p.secret_keys.end()});
    w.u64(p.last_build);
    w.i64(p.created_ns);
    w.i64(p.updated_ns);
    w.u64(p.allocated.size());
    for (auto& [n, a] : p.allocated)
      put_allocation(w, a);
    w.u64(p.builds.size());
    for (auto& [n, b] : p.builds)
      put_build(w, b);
    w.u64(p.cron_slots.size());
    for (auto& [trigger, slot] : p.cron_slots) {
      w.str(trigger);
      w.i64(slot);
    }
    w.u64(p.git_refs.size());
    for (auto& [trigger, urls] : p.git_refs) {
      w.str(trigger);
      w.u64(urls.size());
      for (auto& [url, refs] : urls) {
        w.str(url);
        w.params(refs);
      }
    }
  }
  w.u64(workers_.size());
  for (auto& [name, x] : workers_) {
    w.str(name);
    w.strs(x.tags);
    w.u64(x.concurrency);
    w.str(x.host_json);
    w.str(x.token_sha256);
    w.u64(x.enlisted);
    w.u64(x.online);
    w.u64(x.deleted);
  }
  w.u64(tokens_.size());
  for (auto& [id, t] : tokens_) {
    w.str(id);
    w.str(t.label);
    w.str(t.scope);
    w.str(t.project);
    w.str(t.token_sha256);
    w.u64(t.revoked);
    w.i64(t.issued_ns);
  }
  return std::move(w.out);
}

std::optional<read_model> read_model::decode(std::string_view bytes) {
  if (bytes.substr(0, magic.size()) != magic)
    return std::nullopt;
  reader r{bytes.substr(magic.size())};
  read_model m;
  try {
    m.seq_ = global_seq{r.u64()};
    for (auto n = r.u64(); n > 0; --n) {
      auto name = r.str();
      auto& p = m.projects_[name];
      p.name = name;
      p.deleted = r.u64() != 0;
      p.definition_version = r.u32();
      p.content_sha256 = r.str();
      p.yaml = r.str();
      if (!p.yaml.empty())
        if (auto def = parse_project_definition(p.yaml))
          p.definition = std::make_shared<const project_definition>(std::move(*def));
      for (auto& k : r.strs())
        p.secret_keys.insert(k);
      p.last_build = r.u32();
      p.created_ns = r.i64();
      p.updated_ns = r.i64();
      for (auto k = r.u64(); k > 0; --k) {
        auto a = get_allocation(r);
        m.open_.emplace(name, a.number);
        p.allocated.emplace(a.number, std::move(a));
      }
      for (auto k = r.u64(); k > 0; --k) {
        auto b = get_build(r, name);
        auto number = b.number;
        if (!b.completed)
          m.open_.emplace(name, number);
        for (auto& r : b.runs)
          if (r.finished() && !r.console_archived)
            m.unarchived_.insert({name, number, r.name});
        m.track_notifications(p.builds.emplace(number, std::move(b)).first->second);
      }
      for (auto k = r.u64(); k > 0; --k) {
        auto trigger = r.str();
        p.cron_slots[trigger] = r.i64();
      }
      for (auto k = r.u64(); k > 0; --k) {
        auto& urls = p.git_refs[r.str()];
        for (auto u = r.u64(); u > 0; --u) {
          auto url = r.str();
          urls[url] = r.params();
        }
      }
    }
    for (auto n = r.u64(); n > 0; --n) {
      auto name = r.str();
      auto& w = m.workers_[name];
      w.name = name;
      w.tags = r.strs();
      w.concurrency = r.u32();
      w.host_json = r.str();
      w.token_sha256 = r.str();
      w.enlisted = r.u64() != 0;
      w.online = r.u64() != 0;
      w.deleted = r.u64() != 0;
    }
    for (auto n = r.u64(); n > 0; --n) {
      auto id = r.str();
      auto& t = m.tokens_[id];
      t.id = id;
      t.label = r.str();
      t.scope = r.str();
      t.project = r.str();
      t.token_sha256 = r.str();
      t.revoked = r.u64() != 0;
      t.issued_ns = r.i64();
    }
    if (!r.done())
      return std::nullopt;
  } catch (const truncated&) {
    return std::nullopt;
  }
  // Derived: the queue and who holds what.
  for (auto& [name, p] : m.projects_)
    for (auto& [number, b] : p.builds)
      for (auto& run : b.runs) {
        if (run.finished())
          continue;
        run_key key{name, number, run.name};
        if (run.worker.empty()) {
          if (run.status == kiln::status::queued)
            m.queue_[run.queued_seq] = key;
        } else {
          auto& w = m.workers_[run.worker];
          if (w.name.empty())
            w.name = run.worker;
          w.holds.insert(key);
        }
      }
  return m;
}

} // namespace kiln::domain
