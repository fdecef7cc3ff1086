#include "swarm/layer_scheduler.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <tuple>

#include "swarm/cluster_view.h"
#include "swarm/link_costs.h"

namespace px::swarm {
namespace {

bool assignable(const NodeAnnouncement& n, const std::set<std::string>& fixed) {
  return !fixed.count(n.node_id) && (n.state == "joining" || n.state == "ready" || n.state == "loading");
}

bool has_range(const NodeAnnouncement& n) { return n.layer_end > n.layer_begin; }

// `rates`: node_link_rates() of the nodes announced.
NodeCapacity capacity_of(const NodeAnnouncement& n, const std::map<std::string, NodeLinkRates>& rates) {
  const auto r = rates.find(n.node_id);
  return {n.node_id, n.free_memory, n.layers_per_second, r == rates.end() ? 0.0 : r->second.stage()};
}

}  // namespace

bool covers_model(const std::vector<NodeAnnouncement>& nodes, int n_layers) {
  return unloaded_route(ready_stages(nodes), n_layers).has_value();
}

namespace {

// Nodes whose range serves (or is about to serve) requests: the ranges a repair builds on.
bool in_service(const NodeAnnouncement& n) {
  return has_range(n) && (n.state == "ready" || n.state == "loading");
}

// The fewest moves that cover the model again, when a failure left a gap: a chain from layer 0
// to n_layers made of the ranges in service where they fit, and new stages for the gaps, each
// given to a joining node or else to a replica whose range another node still holds. Moving
// nothing else keeps the surviving pipelines serving while the gap loads. A candidate behind a
// slow link takes a gap only when no other can. Empty when the free
// nodes cannot fill the gaps (the full allocation runs then); an empty map when the stages in
// service close every gap already (some are still loading). `assignable_nodes`: the capacities
// of the nodes that may move, `by_id` their announcements.
std::optional<std::map<std::string, LayerRange>> repair_cover(
    const std::vector<NodeAnnouncement>& nodes, const std::vector<NodeCapacity>& assignable_nodes,
    const std::map<std::string, const NodeAnnouncement*>& by_id, const SchedulerPolicy& policy) {
  const int n_layers = policy.model.n_layers;
  std::map<std::pair<int, int>, int> holders;  // range in service -> nodes holding it
  for (const auto& n : nodes) {
    if (in_service(n)) ++holders[{n.layer_begin, n.layer_end}];
  }
  // Candidates for new stages, best first: joining nodes, then spare replicas.
  struct Free {
    const NodeAnnouncement* node;
    int capacity;
    bool spare;
    bool slow;     // behind a slow link
  };
  const double typical = typical_link_rate(assignable_nodes, policy.model, policy.allocation);
  std::vector<Free> free;
  for (const NodeCapacity& c : assignable_nodes) {
    const NodeAnnouncement& n = *by_id.at(c.id);
    const int capacity = layer_capacity(c, policy.model, policy.allocation);
    if (capacity <= 0) continue;
    const bool slow = slow_link(c.link_bytes_per_second, typical, policy.allocation);
    if (!has_range(n) && n.state == "joining") {
      free.push_back({&n, capacity, false, slow});
    } else if (n.state == "ready" && holders[{n.layer_begin, n.layer_end}] > 1) {
      free.push_back({&n, capacity, true, slow});
    }
  }
  int max_capacity = 0;
  for (const Free& f : free) max_capacity = std::max(max_capacity, f.capacity);
  // Shortest path over layer boundaries: (new stages, layers loaded), lexicographically.
  using Cost = std::pair<int, int>;
  const Cost unreachable{INT_MAX, INT_MAX};
  std::vector<Cost> cost(n_layers + 1, unreachable);
  std::vector<std::pair<int, bool>> from(n_layers + 1, {-1, false});  // previous boundary, new stage?
  cost[0] = {0, 0};
  for (int b = 0; b < n_layers; ++b) {
    if (cost[b] == unreachable) continue;
    auto relax = [&](int e, bool fresh) {
      const Cost c{cost[b].first + fresh, cost[b].second + (fresh ? e - b : 0)};
      if (c < cost[e]) cost[e] = c, from[e] = {b, fresh};
    };
    for (const auto& [range, count] : holders) {
      if (range.first == b) relax(range.second, false);
    }
    for (int e = b + 1; e <= std::min(n_layers, b + max_capacity); ++e) relax(e, true);
  }
  if (cost[n_layers] == unreachable) return std::nullopt;
  std::vector<LayerRange> gaps;
  for (int e = n_layers; e > 0; e = from[e].first) {
    if (from[e].second) gaps.push_back({from[e].first, e});
  }
  // The longest gap first, each to the smallest candidate that holds it (on a fast link before a
  // slow one, then joiners before spares).
  std::sort(gaps.begin(), gaps.end(), [](const LayerRange& a, const LayerRange& b) {
    return a.end - a.begin > b.end - b.begin;
  });
  std::map<std::string, LayerRange> out;
  std::vector<bool> used(free.size(), false);
  auto preference = [](const Free& f) { return std::tuple(f.slow, f.spare, f.capacity); };
  for (const LayerRange& gap : gaps) {
    int pick = -1;
    for (size_t i = 0; i < free.size(); ++i) {
      const Free& f = free[i];
      if (used[i] || f.capacity < gap.end - gap.begin) continue;
      if (f.spare && holders[{f.node->layer_begin, f.node->layer_end}] <= 1) continue;  // its last copy now
      if (pick < 0 || preference(f) < preference(free[pick])) pick = int(i);
    }
    if (pick < 0) return std::nullopt;
    used[pick] = true;
    if (free[pick].spare) --holders[{free[pick].node->layer_begin, free[pick].node->layer_end}];
    out[free[pick].node->node_id] = gap;
  }
  return out;
}

}  // namespace

std::map<std::string, LayerRange> plan_assignments(const std::vector<NodeAnnouncement>& nodes,
                                                   const std::set<std::string>& fixed, const SchedulerPolicy& policy) {
  const int n_layers = policy.model.n_layers;
  std::map<std::string, LayerRange> out;
  const std::map<std::string, NodeLinkRates> rates = node_link_rates(nodes);
  if (covers_model(nodes, n_layers)) {
    // Ranges in service: their replicas and the time per token one replica carries.
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
      const int capacity = layer_capacity(capacity_of(n, rates), policy.model, policy.allocation);
      if (capacity >= n_layers) {
        out[n.node_id] = {0, n_layers};  // a pipeline of its own
        continue;
      }
      // The range with the fewest replicas first (it restores a pipeline a failure broke, and
      // no single fault then uncovers a layer), then the one whose replicas are the busiest.
      std::optional<std::pair<int, double>> best;  // (replicas, -seconds per replica)
      LayerRange pick{0, 0};
      for (auto& [range, demand] : ranges) {
        if (range.second - range.first > capacity) continue;
        const std::pair<int, double> key{demand.second, -demand.first / demand.second};
        if (!best || key < *best) best = key, pick = {range.first, range.second};
      }
      if (!best) continue;  // too small for any stage: stays unused
      out[n.node_id] = pick;
      ranges[{pick.begin, pick.end}].second += 1;
    }
    return out;
  }
  std::vector<NodeCapacity> capacities;
  std::map<std::string, const NodeAnnouncement*> by_id;
  for (const auto& n : nodes) {
    if (!assignable(n, fixed)) continue;
    capacities.push_back(capacity_of(n, rates));
    by_id[n.node_id] = &n;
  }
  // After the first allocation, a gap is filled where it is rather than everything re-planned,
  // however few nodes are left: --wait-nodes holds only the first allocation back.
  const bool allocated_before =
      std::any_of(nodes.begin(), nodes.end(), [](const NodeAnnouncement& n) { return in_service(n); });
  // The nodes waited for offer memory: a head without a worker is none.
  const auto offering =
      std::count_if(capacities.begin(), capacities.end(), [](const NodeCapacity& c) { return c.memory_bytes > 0; });
  if (allocated_before) {
    if (auto repair = repair_cover(nodes, capacities, by_id, policy)) return *repair;
  } else if (offering < policy.wait_nodes) {
    return out;
  }
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
