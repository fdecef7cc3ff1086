#include "cli/chaos_stats.h"

#include <algorithm>
#include <cmath>

namespace px::cli {

double seconds_outside(ChaosClock::time_point begin, ChaosClock::time_point end, const std::vector<Interval>& uncovered) {
  if (end <= begin) return 0;
  auto inside = ChaosClock::duration::zero();
  for (const Interval& u : uncovered) {
    const auto b = std::max(begin, u.begin), e = std::min(end, u.end);
    if (e > b) inside += e - b;
  }
  return std::max(0.0, std::chrono::duration<double>((end - begin) - inside).count());
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * double(values.size()));
  return values[size_t(std::max(1.0, rank)) - 1];
}

double ChaosRunReport::longest_uncovered_s() const {
  double longest = 0;
  for (const Interval& u : uncovered) longest = std::max(longest, std::chrono::duration<double>(u.end - u.begin).count());
  return longest;
}

double ChaosRunReport::uncovered_s() const {
  double total = 0;
  for (const Interval& u : uncovered) total += std::chrono::duration<double>(u.end - u.begin).count();
  return total;
}

nlohmann::json ChaosRunReport::to_json() const {
  return {{"requests", requests()},
          {"completed", completed},
          {"failed", failed},
          {"differing", differing},
          {"kills", kills},
          {"same_port_restarts", same_port_restarts},
          {"stalls", stalls},
          {"sole_replica_stalls", sole_replica_stalls},
          {"pause_p50_s", quantile(pauses_s, 0.5)},
          {"pause_p99_s", quantile(pauses_s, 0.99)},
          {"pause_max_s", quantile(pauses_s, 1.0)},
          {"covered_pause_max_s", quantile(covered_pauses_s, 1.0)},
          {"uncovered_s", uncovered_s()},
          {"longest_uncovered_s", longest_uncovered_s()},
          {"failures", failures}};
}

}  // namespace px::cli
