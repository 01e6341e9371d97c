// The cluster's lease (which core runs the process managers) on a real
// nats-server with JetStream: one holder at a time; a holder that gives
// the lease up hands it on at once; one that dies hands it on once its key
// expires; a holder whose key someone else wrote steps down.
#include "storage/jetstream_lease.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>
#include <nats/nats.h>

#include <atomic>
#include <csignal>

using namespace kiln;
using namespace kiln::test;
using namespace std::chrono_literals;

namespace {

struct contender {
  std::atomic<bool> leading{false};
  std::atomic<int> changes{0};
  std::unique_ptr<storage::jetstream_lease> lease;

  contender(const std::string& url, const std::string& holder,
            std::chrono::milliseconds ttl = 1s) {
    auto l = storage::jetstream_lease::start(
      {.servers = {url}, .bucket = "TEST_LEASES", .holder = holder, .ttl = ttl},
      [this](bool now) {
        leading = now;
        ++changes;
      });
    if (!l)
      FAIL("lease: " << l.error().message);
    lease = std::move(*l);
  }
};

// Fails if both hold the lease at any moment of the next `window`.
void never_both(const contender& a, const contender& b, std::chrono::milliseconds window) {
  auto until = std::chrono::steady_clock::now() + window;
  wait_until([&] {
    REQUIRE_FALSE((a.leading && b.leading));
    return std::chrono::steady_clock::now() >= until;
  }, window + 5s);
}

} // namespace

TEST_CASE("one of two cores holds the lease, and the other takes it when it is given up",
          "[jetstream][nats][lease]") {
  nats_server ns;
  // A long ttl: only a lease given up can change hands within the test.
  auto a = std::make_unique<contender>(ns.url(), "a", 20s);
  auto b = std::make_unique<contender>(ns.url(), "b", 20s);
  REQUIRE(wait_until([&] { return a->leading || b->leading; }, 30s));
  // Several renewals, and several attempts by the other.
  never_both(*a, *b, 5s);
  CHECK(a->lease->held() == a->leading);
  CHECK(b->lease->held() == b->leading);
  auto& holder = a->leading ? a : b;
  auto& other = a->leading ? b : a;
  CHECK(other->changes == 0);
  // Given up on a clean stop: the other takes it at its next attempt, well
  // before the key would have expired.
  holder.reset();
  REQUIRE(wait_until([&] { return other->leading.load(); }, 15s));
  CHECK(other->changes == 1);
}

TEST_CASE("a core that dies holding the lease loses it once its key expires",
          "[jetstream][nats][lease]") {
  nats_server ns;
  child_process holder{{{LEASE_HOLDER_BINARY, ns.url(), "TEST_LEASES"}, true}};
  REQUIRE(holder.wait_for_line("held", 30s));
  contender other{ns.url(), "other"};
  // Renewed every ttl/5: the key never expires while its holder lives.
  auto until = std::chrono::steady_clock::now() + 3s;
  wait_until([&] {
    REQUIRE_FALSE(other.leading);
    return std::chrono::steady_clock::now() >= until;
  }, 10s);
  holder.signal(SIGKILL);
  holder.wait();
  REQUIRE(wait_until([&] { return other.leading.load(); }, 30s));
}

TEST_CASE("a holder whose key another writer changed steps down, and takes it again when free",
          "[jetstream][nats][lease]") {
  nats_server ns;
  contender a{ns.url(), "a"};
  REQUIRE(wait_until([&] { return a.leading.load(); }, 30s));

  natsConnection* nc = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, ns.url().c_str()) == NATS_OK);
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  kvStore* kv = nullptr;
  REQUIRE(js_KeyValue(&kv, js, "TEST_LEASES") == NATS_OK);
  // Written over and over, so that the key is never free for `a`.
  std::uint64_t rev = 0;
  REQUIRE(wait_until([&] {
    kvStore_PutString(&rev, kv, "leader", "intruder");
    return !a.leading;
  }, 30s));
  CHECK_FALSE(a.lease->held());
  REQUIRE(kvStore_Delete(kv, "leader") == NATS_OK);
  REQUIRE(wait_until([&] { return a.leading.load(); }, 30s));
  kvStore_Destroy(kv);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}
