#pragma once
// Prometheus metrics of the API server (text exposition format 0.0.4): the engine's counters
// and gauges, plus latency histograms measured where the client sees them, in the server.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/engine.h"

namespace px::server {

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, ascending (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends # HELP / # TYPE and the _bucket{le=...} (cumulative), _sum and _count lines.
  void render(std::string& out, std::string_view name, std::string_view help) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), plus one for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  Histogram time_to_first_token;   // seconds from the request's arrival to its first token
  Histogram inter_token_latency;   // seconds between consecutive tokens of a choice
  Histogram request_duration;      // seconds from arrival to the last token of a choice

  // The whole exposition; `stats` is null while the model loads (engine metrics read 0).
  std::string render(const EngineStats* stats) const;
};

}  // namespace px::server
