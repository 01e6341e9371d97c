// Test helper for jetstream_lease_test: takes the cluster's lease on the
// NATS server at URL (ttl 1 s), prints "held" once it holds it, and keeps
// renewing until killed: a core that dies holding the lease.
#include "storage/jetstream_lease.hpp"

#include <chrono>
#include <cstdio>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: lease_holder NATS_URL BUCKET\n");
    return 2;
  }
  auto lease = kiln::storage::jetstream_lease::start(
    {.servers = {argv[1]}, .bucket = argv[2], .holder = "lease-holder",
     .ttl = std::chrono::seconds{1}},
    [](bool leading) {
      std::printf("%s\n", leading ? "held" : "lost");
      std::fflush(stdout);
    });
  if (!lease) {
    std::fprintf(stderr, "lease: %s\n", lease.error().message.c_str());
    return 1;
  }
  for (;;)
    ::pause();  // until the test's SIGKILL
}
