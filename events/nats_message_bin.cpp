#include "events/nats_message_bin.hpp"

#include <nats/nats.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace kiln::bus {

namespace {

constexpr std::size_t batch_messages = 64;
constexpr std::size_t batch_bytes = 1 << 20;

struct bin {
  std::mutex mu;
  std::vector<natsMsg*> held;
  std::size_t bytes = 0;
};

bin& the_bin() {
  static auto* b = new bin;  // never destroyed: disposals may come during exit
  return *b;
}

} // namespace

void dispose(natsMsg* m) {
  if (!m)
    return;
  std::vector<natsMsg*> full;
  {
    auto& b = the_bin();
    std::lock_guard lock{b.mu};
    b.held.push_back(m);
    b.bytes += static_cast<std::size_t>(natsMsg_GetDataLength(m));
    if (b.held.size() < batch_messages && b.bytes < batch_bytes)
      return;
    full.swap(b.held);
    b.bytes = 0;
  }
  for (auto* x : full)
    natsMsg_Destroy(x);
}

} // namespace kiln::bus
