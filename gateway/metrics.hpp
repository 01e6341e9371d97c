#pragma once
// The gateway's own figures for /metrics (Prometheus text format): requests
// by route and status, and a latency histogram per route.
#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace kiln::gateway {

class request_metrics {
 public:
  void record(const std::string& route, int status, std::chrono::nanoseconds took);
  // The request families, as Prometheus text.
  std::string render() const;

 private:
  static constexpr std::array<double, 12> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  struct histogram {
    std::array<std::uint64_t, bounds.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, histogram> latency_;
};

} // namespace kiln::gateway
