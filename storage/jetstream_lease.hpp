#pragma once
// Which one of a cluster's cores leads (issue 6): a key in a JetStream
// key-value bucket whose values expire after `ttl`. The holder renews it
// every ttl/5 with the revision it last wrote, so that two cores cannot
// both hold it; the others try to create it at the same pace, and one of
// them gets it once the holder has stopped renewing (it died, or lost
// NATS) and the key expired, or at once when the holder gave it up on a
// clean stop.
//
// The lease is for efficiency, not safety: every decision a leader makes is
// an expected-version append, so two leaders for a moment (a holder that
// has not yet noticed it lost the key) only race each other as every core
// did before. A holder stops calling itself one when it has not renewed for
// ttl - 2 * ttl/5, before another core can take the key.
#include "events/result.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln::storage {

class jetstream_lease {
 public:
  struct options {
    std::vector<std::string> servers;
    std::string bucket = "KILN_LEASES";
    std::string key = "leader";
    std::string holder;  // unique to this process: it is what a renewal must find
    std::chrono::milliseconds ttl{5000};
    int replicas = 1;
  };
  // `changed(true)` when this process takes the lease, `changed(false)` when
  // it gives it up or can no longer be sure it holds it; from the lease's
  // thread, and never twice with the same value in a row.
  using on_change = std::function<void(bool leading)>;

  // Error "unavailable" when no NATS server answers. The bucket is made on
  // the lease's thread (a JetStream cluster may still be electing).
  static result<std::unique_ptr<jetstream_lease>> start(options o, on_change changed);
  // Gives the lease up if held (the next core takes it without waiting it out).
  ~jetstream_lease();
  jetstream_lease(const jetstream_lease&) = delete;
  jetstream_lease& operator=(const jetstream_lease&) = delete;

  bool held() const;

  struct impl;

 private:
  explicit jetstream_lease(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::storage
