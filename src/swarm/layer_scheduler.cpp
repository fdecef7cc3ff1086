#include "swarm/layer_scheduler.h"

#include <algorithm>

#include "swarm/cluster_view.h"

namespace px::swarm {
namespace {

bool assignable(const NodeAnnouncement& n, const std::set<std::string>& fixed) {
  return !fixed.count(n.node_id) && (n.state == "joining" || n.state == "ready" || n.state == "loading");
}

bool has_range(const NodeAnnouncement& n) { return n.layer_end > n.layer_begin; }

NodeCapacity capacity_of(const NodeAnnouncement& n) {
  return {n.node_id, n.free_memory, n.layers_per_second};
}

}  // namespace

bool covers_model(const std::vector<NodeAnnouncement>& nodes, int n_layers) {
  return unloaded_route(ready_stages(nodes), n_layers).has_value();
}

std::map<std::string, LayerRange> plan_assignments(const std::vector<NodeAnnouncement>& nodes,
                                                   const std::set<std::string>& fixed, const SchedulerPolicy& policy) {
  const int n_layers = policy.model.n_layers;
  std::map<std::string, LayerRange> out;
  if (covers_model(nodes, n_layers)) {
    // Ranges in service and their demand: time per token shared among the replicas.
    std::map<std::pair<int, int>, std::pair<double, int>> ranges;  // range -> (seconds, replicas)
    for (const auto& n : nodes) {
      if (!has_range(n) || n.state == "draining" || n.state == "leaving") continue;
      auto& r = ranges[{n.layer_begin, n.layer_end}];
      const int layers = n.layer_end - n.layer_begin;
      r.first = std::max(r.first, n.layers_per_second > 0 ? layers / n.layers_per_second : layers * 1e-3);
      r.second += 1;
    }
    for (const auto& n : nodes) {
      if (!assignable(n, fixed) || has_range(n) || n.state != "joining") continue;
      const int capacity = layer_capacity(capacity_of(n), policy.model, policy.allocation);
      if (capacity >= n_layers) {
        out[n.node_id] = {0, n_layers};  // a pipeline of its own
        continue;
      }
      double best = -1;
      LayerRange pick{0, 0};
      for (auto& [range, demand] : ranges) {
        if (range.second - range.first > capacity) continue;
        const double per_replica = demand.first / demand.second;
        if (per_replica > best) best = per_replica, pick = {range.first, range.second};
      }
      if (best < 0) continue;  // too small for any stage: stays unused
      out[n.node_id] = pick;
      ranges[{pick.begin, pick.end}].second += 1;
    }
    return out;
  }
  std::vector<NodeCapacity> capacities;
  std::map<std::string, const NodeAnnouncement*> by_id;
  for (const auto& n : nodes) {
    if (!assignable(n, fixed)) continue;
    capacities.push_back(capacity_of(n));
    by_id[n.node_id] = &n;
  }
  if (int(capacities.size()) < policy.wait_nodes) return out;
  const Allocation allocation = allocate_layers(capacities, policy.model, policy.allocation);
  if (allocation.pipelines.empty()) return out;  // together they cannot hold the model yet
  auto assign = [&](const StageAssignment& s) {
    const NodeAnnouncement& n = *by_id.at(s.node_id);
    if (n.layer_begin != s.begin || n.layer_end != s.end) out[s.node_id] = {s.begin, s.end};
  };
  for (const Pipeline& p : allocation.pipelines) {
    for (const StageAssignment& s : p.stages) assign(s);
  }
  for (const StageAssignment& s : allocation.replicas) assign(s);
  return out;
}

}  // namespace px::swarm
