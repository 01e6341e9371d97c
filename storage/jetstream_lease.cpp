#include "storage/jetstream_lease.hpp"

#include "storage/jetstream_link.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace kiln::storage {

using clock_type = std::chrono::steady_clock;

struct jetstream_lease::impl {
  options o;
  on_change changed;
  std::unique_ptr<jetstream::link> link;
  kvStore* kv = nullptr;
  std::chrono::milliseconds period;
  std::atomic<bool> holding{false};
  std::uint64_t revision = 0;           // of our last write, while holding
  clock_type::time_point renewed_sent;  // when that write was sent
  bool stopping = false;
  std::mutex mu;
  std::condition_variable cv;
  std::thread thread;
  std::string last_problem;

  ~impl() {
    if (kv)
      kvStore_Destroy(kv);
  }

  void problem(const std::string& what) {
    if (what != last_problem)
      spdlog::warn("lease problem=\"{}\" bucket={} holder={}", what, o.bucket, o.holder);
    last_problem = what;
  }

  bool bucket() {
    if (kv)
      return true;
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = o.bucket.c_str();
    cfg.History = 1;
    // NATS.c 3.4 hands TTL to the stream's MaxAge as it is: nanoseconds.
    cfg.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(o.ttl).count();
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = o.replicas;
    auto s = js_CreateKeyValue(&kv, link->js(), &cfg);
    if (s != NATS_OK)  // made by another core with other settings: use it as it is
      s = js_KeyValue(&kv, link->js(), o.bucket.c_str());
    if (s != NATS_OK) {
      kv = nullptr;
      problem("no bucket: " + jetstream::status_text(s) + " " + nats_GetLastError(nullptr));
      return false;
    }
    return true;
  }

  // Our write of the key went through at `sent`.
  void wrote(std::uint64_t rev, clock_type::time_point sent) {
    revision = rev;
    renewed_sent = sent;
    last_problem.clear();
  }

  void set(bool now_holding) {
    if (holding.exchange(now_holding) == now_holding)
      return;
    spdlog::info("lease {} bucket={} key={} holder={}", now_holding ? "taken" : "left", o.bucket,
                 o.key, o.holder);
    changed(now_holding);
  }

  void round() {
    if (!bucket())
      return;
    auto sent = clock_type::now();
    std::uint64_t rev = 0;
    if (holding) {
      auto s = kvStore_Update(&rev, kv, o.key.c_str(), o.holder.data(), static_cast<int>(o.holder.size()),
                              revision);
      if (s == NATS_OK)
        return wrote(rev, sent);
      std::string why = nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : "";
      // Another core wrote the key: it is theirs now.
      if (why.find("wrong last sequence") != std::string::npos)
        return set(false);
      problem("renewal failed: " + jetstream::status_text(s) + " " + why);
      if (clock_type::now() - renewed_sent >= o.ttl - 2 * period)
        set(false);
      return;
    }
    auto s = kvStore_Create(&rev, kv, o.key.c_str(), o.holder.data(), static_cast<int>(o.holder.size()));
    if (s == NATS_OK) {
      wrote(rev, sent);
      set(true);
    }
  }

  void loop() {
    std::unique_lock lock{mu};
    while (!stopping) {
      lock.unlock();
      round();
      lock.lock();
      cv.wait_for(lock, period, [this] { return stopping; });
    }
  }
};

result<std::unique_ptr<jetstream_lease>> jetstream_lease::start(options o, on_change changed) {
  auto period = std::max(std::chrono::milliseconds{20}, o.ttl / 5);
  auto l = jetstream::link::connect(o.servers, "kiln-lease-" + o.holder, period);
  if (!l)
    return l.error();
  auto i = std::make_unique<impl>();
  i->o = std::move(o);
  i->changed = std::move(changed);
  i->link = std::move(*l);
  i->period = period;
  i->thread = std::thread{[p = i.get()] { p->loop(); }};
  return std::unique_ptr<jetstream_lease>{new jetstream_lease{std::move(i)}};
}

jetstream_lease::jetstream_lease(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

jetstream_lease::~jetstream_lease() {
  if (!impl_)
    return;
  {
    std::lock_guard lock{impl_->mu};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
  if (impl_->holding && impl_->kv) {
    // Only if it is still ours (the revision we wrote): another core's key stays.
    std::uint64_t rev = 0;
    if (kvStore_Update(&rev, impl_->kv, impl_->o.key.c_str(), "", 0, impl_->revision) == NATS_OK)
      kvStore_Delete(impl_->kv, impl_->o.key.c_str());
    impl_->set(false);
  }
}

bool jetstream_lease::held() const { return impl_->holding; }

} // namespace kiln::storage
