#include "swarm/routing.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace px::swarm {

double stage_cost(const StageState& stage, const RoutingConfig& config) {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  if (stage.full || stage.age_seconds > config.stale_after_seconds || stage.load >= 1) return kInfinity;
  if (!(stage.seconds_per_token >= 0) || !std::isfinite(stage.seconds_per_token)) return kInfinity;
  return stage.seconds_per_token / (1.0 - std::max(0.0, stage.load));
}

std::optional<Route> find_route(const std::vector<StageState>& stages, const RoutingConfig& config, const RttFn& rtt) {
  if (config.n_layers < 1) fail("routing: the model must have at least one layer");
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  // Stages by where they begin; every edge goes to a larger `begin`, so processing stages in
  // order of `begin` visits the DAG topologically.
  std::vector<size_t> order;
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageState& s = stages[i];
    if (s.begin >= 0 && s.end > s.begin && s.end <= config.n_layers && std::isfinite(stage_cost(s, config))) {
      order.push_back(i);
    }
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return stages[a].begin != stages[b].begin ? stages[a].begin < stages[b].begin : a < b;
  });
  // ending[b]: usable stages that end at layer b (the predecessors of stages beginning at b).
  std::vector<std::vector<size_t>> ending(config.n_layers + 1);
  std::vector<double> dist(stages.size(), kInfinity);
  std::vector<size_t> parent(stages.size(), SIZE_MAX);
  for (size_t i : order) {
    const StageState& s = stages[i];
    const double own = stage_cost(s, config);
    if (s.begin == 0) {
      dist[i] = own;
    } else {
      for (size_t j : ending[s.begin]) {
        const double via = dist[j] + std::max(0.0, rtt(stages[j].node_id, s.node_id)) + own;
        if (via < dist[i]) {
          dist[i] = via;
          parent[i] = j;
        }
      }
    }
    if (dist[i] < kInfinity) ending[s.end].push_back(i);
  }
  size_t best = SIZE_MAX;
  for (size_t i : ending[config.n_layers]) {
    if (best == SIZE_MAX || dist[i] < dist[best]) best = i;
  }
  if (best == SIZE_MAX) return std::nullopt;
  Route route;
  route.cost_seconds = dist[best];
  for (size_t i = best; i != SIZE_MAX; i = parent[i]) route.stages.push_back(i);
  std::reverse(route.stages.begin(), route.stages.end());
  return route;
}

}  // namespace px::swarm
