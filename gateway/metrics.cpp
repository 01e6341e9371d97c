#include "gateway/metrics.hpp"

#include <cstdio>

namespace kiln::gateway {

void request_metrics::record(const std::string& route, int status, std::chrono::nanoseconds took) {
  auto secs = std::chrono::duration<double>(took).count();
  std::lock_guard lock{mu_};
  ++requests_[{route, status}];
  auto& h = latency_[route];
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (secs <= bounds[i])
      ++h.buckets[i];
  ++h.count;
  h.sum += secs;
}

std::string request_metrics::render() const {
  std::string out;
  char line[512];
  std::lock_guard lock{mu_};
  out += "# HELP kiln_http_requests_total HTTP requests by route and status.\n"
         "# TYPE kiln_http_requests_total counter\n";
  for (auto& [key, n] : requests_) {
    std::snprintf(line, sizeof line, "kiln_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                  key.first.c_str(), key.second, static_cast<unsigned long long>(n));
    out += line;
  }
  out += "# HELP kiln_http_request_duration_seconds Time to answer, by route (streams: to start).\n"
         "# TYPE kiln_http_request_duration_seconds histogram\n";
  for (auto& [route, h] : latency_) {
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      std::snprintf(line, sizeof line,
                    "kiln_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), bounds[i], static_cast<unsigned long long>(h.buckets[i]));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "kiln_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "kiln_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "kiln_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(h.count), route.c_str(), h.sum,
                  route.c_str(), static_cast<unsigned long long>(h.count));
    out += line;
  }
  return out;
}

} // namespace kiln::gateway
