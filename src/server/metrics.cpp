#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace px::server {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  std::lock_guard lock(mutex_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
}

namespace {

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
          1.0,   2.5,    5.0,   7.5,  10.0,  20.0, 40.0,  80.0};
}

std::vector<double> duration_buckets() {
  return {0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0, 120.0, 300.0, 600.0};
}

void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

ServerMetrics::ServerMetrics()
    : time_to_first_token(latency_buckets()),
      inter_token_latency(latency_buckets()),
      request_duration(duration_buckets()) {}

std::string ServerMetrics::render(const EngineStats* stats) const {
  const EngineStats s = stats ? *stats : EngineStats{};
  std::string out;
  scalar(out, "parallax_requests_total", "counter", "Requests the engine accepted.", double(s.requests_total));
  scalar(out, "parallax_requests_running", "gauge", "Requests being generated now.", double(s.requests_running));
  scalar(out, "parallax_requests_queued", "gauge", "Requests waiting to start.", double(s.requests_queued));
  scalar(out, "parallax_prompt_tokens_total", "counter", "Prompt tokens processed.", double(s.prompt_tokens_total));
  scalar(out, "parallax_generation_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens_total));
  scalar(out, "parallax_kv_cache_usage_ratio", "gauge", "Fraction of the KV cache in use (0..1).", s.kv_cache_usage);
  time_to_first_token.render(out, "parallax_time_to_first_token_seconds",
                             "Seconds from a request's arrival to its first generated token.");
  inter_token_latency.render(out, "parallax_inter_token_latency_seconds",
                             "Seconds between consecutive generated tokens of a choice.");
  request_duration.render(out, "parallax_request_duration_seconds",
                          "Seconds from a request's arrival to its last generated token.");
  return out;
}

}  // namespace px::server
