#include "swarm/allocation.h"

#include <algorithm>
#include <cmath>
#include <climits>
#include <set>
#include <tuple>
#include <numeric>

#include "core/error.h"
#include "swarm/pipeline_packing.h"

namespace px::swarm {
namespace {

struct Candidate {
  int index;     // into the nodes vector
  int capacity;  // layers
};

int layers_for_bytes(double bytes, double layer_bytes) {
  return bytes <= 0 ? 0 : static_cast<int>(std::ceil(bytes / layer_bytes));
}

// Layers of capacity one copy of the model takes: its layers, the embedding and the head.
int64_t pipeline_need(const ModelFootprint& model) {
  return int64_t(model.n_layers) + layers_for_bytes(model.embedding_bytes, model.layer_bytes) +
         layers_for_bytes(model.head_bytes, model.layer_bytes);
}

void validate(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model, const AllocationConfig& config) {
  if (model.n_layers < 1) fail("allocation: the model must have at least one layer, got {}", model.n_layers);
  if (!(model.layer_bytes > 0) || !std::isfinite(model.layer_bytes)) {
    fail("allocation: layer_bytes must be positive and finite, got {}", model.layer_bytes);
  }
  if (!(model.embedding_bytes >= 0) || !(model.head_bytes >= 0)) fail("allocation: negative embedding or head size");
  if (!(config.memory_ratio > 0 && config.memory_ratio <= 1)) {
    fail("allocation: memory_ratio must be in (0, 1], got {}", config.memory_ratio);
  }
  for (const NodeCapacity& n : nodes) {
    if (!(n.memory_bytes >= 0) || !std::isfinite(n.memory_bytes) || !(n.layers_per_second >= 0) ||
        !std::isfinite(n.layers_per_second) || !(n.link_bytes_per_second >= 0) ||
        !std::isfinite(n.link_bytes_per_second)) {
      fail("allocation: node '{}' announced invalid memory {}, speed {} or link rate {}", n.id, n.memory_bytes,
           n.layers_per_second, n.link_bytes_per_second);
    }
  }
}

// Remaining nodes ordered by capacity, then speed (then index, for determinism): among nodes
// of equal capacity the faster ones are taken first.
using Key = std::tuple<int, double, int>;  // capacity, speed, -index

Candidate candidate(const Key& k) { return Candidate{-std::get<2>(k), std::get<0>(k)}; }

// The greedy packing: largest nodes first, each pipeline closed by the best-fitting node (the
// smallest capacity that covers what it still needs, its fastest node; else the largest), at
// most n_layers stages each. Pipelines in the order formed.
std::vector<std::vector<Candidate>> greedy_pipelines(std::set<Key> remaining, int64_t need_per_pipeline, int n_layers) {
  std::vector<std::vector<Candidate>> groups;
  while (!remaining.empty()) {
    std::vector<Candidate> group;
    int64_t need = need_per_pipeline;
    while (need > 0 && !remaining.empty() && int64_t(group.size()) < n_layers) {
      auto fit = remaining.lower_bound(Key{int(std::min<int64_t>(need, 1 << 30)), -1.0, INT32_MIN});
      if (fit != remaining.end()) {
        fit = std::prev(remaining.upper_bound(Key{std::get<0>(*fit), INFINITY, INT32_MAX}));
      } else {
        fit = std::prev(remaining.end());
      }
      group.push_back(candidate(*fit));
      need -= std::get<0>(*fit);
      remaining.erase(fit);
    }
    if (need > 0) break;  // the rest cannot complete another pipeline
    groups.push_back(std::move(group));
  }
  return groups;
}

// The programme's budget: about this many steps in all (some 10 ms on a slow 2-core machine),
// shared among the nodes it reads, and never fewer than kMinSearchWork per node.
constexpr size_t kSearchWork = 2'000'000;
constexpr size_t kMinSearchWork = 64;
constexpr int64_t kImpossible = INT64_MAX;

}  // namespace

int layer_capacity(const NodeCapacity& node, const ModelFootprint& model, const AllocationConfig& config) {
  const double layers = std::floor(node.memory_bytes * config.memory_ratio / model.layer_bytes);
  return layers <= 0 ? 0 : static_cast<int>(std::min(layers, 1e9));
}

std::vector<int> water_fill(const std::vector<double>& speeds, const std::vector<int>& capacities, int n_layers) {
  const size_t n = speeds.size();
  int64_t total_capacity = 0;
  for (int c : capacities) total_capacity += c;
  if (n == 0 || int64_t(n) > n_layers || total_capacity < n_layers ||
      std::any_of(capacities.begin(), capacities.end(), [](int c) { return c < 1; })) {
    return {};
  }
  // Continuous share of stage i: clamp(lambda * speed_i, 1, cap_i); find lambda by bisection.
  auto share = [&](double lambda, size_t i) {
    return std::clamp(lambda * std::max(speeds[i], 1e-12), 1.0, double(capacities[i]));
  };
  auto total = [&](double lambda) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += share(lambda, i);
    return sum;
  };
  double lo = 0, hi = 1;
  while (total(hi) < n_layers && hi < 1e30) hi *= 2;
  for (int iter = 0; iter < 100; ++iter) {
    const double mid = 0.5 * (lo + hi);
    (total(mid) < n_layers ? lo : hi) = mid;
  }
  // Integers: floors, then the remaining layers to the largest fractional parts with room.
  std::vector<int> layers(n);
  std::vector<std::pair<double, size_t>> fractions;
  int assigned = 0;
  for (size_t i = 0; i < n; ++i) {
    const double s = share(hi, i);
    layers[i] = std::max(1, static_cast<int>(std::floor(s)));
    assigned += layers[i];
    fractions.push_back({s - std::floor(s), i});
  }
  std::sort(fractions.begin(), fractions.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (size_t k = 0; assigned < n_layers; k = (k + 1) % n) {
    const size_t i = fractions[k].second;
    if (layers[i] < capacities[i]) {
      ++layers[i];
      ++assigned;
    }
  }
  for (size_t k = n; assigned > n_layers; k = (k + n - 1) % n) {  // floors of 1 may overshoot
    const size_t i = fractions[k % n].second;
    if (layers[i] > 1) {
      --layers[i];
      --assigned;
    }
  }
  return layers;
}

namespace {

// The allocation over `nodes`, those marked `spare` taking part only as replicas (step 4).
Allocation allocate_among(const std::vector<NodeCapacity>& nodes, const std::vector<bool>& spare,
                          const ModelFootprint& model, const AllocationConfig& config) {
  const int L = model.n_layers;
  const int extra_first = layers_for_bytes(model.embedding_bytes, model.layer_bytes);
  const int extra_last = layers_for_bytes(model.head_bytes, model.layer_bytes);
  const int64_t need_per_pipeline = pipeline_need(model);

  Allocation result;
  std::set<Key> remaining, spares;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int cap = nodes[i].layers_per_second > 0 ? layer_capacity(nodes[i], model, config) : 0;
    if (cap > 0) {
      (spare[i] ? spares : remaining).emplace(cap, nodes[i].layers_per_second, -int(i));
    } else {
      result.unused.push_back(nodes[i].id);
    }
  }
  auto key_of = [&](const Candidate& c) { return Key{c.capacity, nodes[c.index].layers_per_second, -c.index}; };

  // Two packings of k pipelines for every k. The greedy one, as pipelines formed in order; and
  // the programme's: nodes that hold a whole pipeline alone are one-stage pipelines (best for
  // any k up to their number, since any pipeline can be swapped for an unused one of them), and
  // PipelinePacking finds the fewest of the others for the rest.
  const std::vector<std::vector<Candidate>> greedy = greedy_pipelines(remaining, need_per_pipeline, L);
  std::vector<Candidate> by_size;  // largest first: capacity, then speed, then index
  for (auto it = remaining.rbegin(); it != remaining.rend(); ++it) by_size.push_back(candidate(*it));
  size_t big = 0;
  while (big < by_size.size() && by_size[big].capacity >= need_per_pipeline) ++big;
  std::vector<int> small;
  for (size_t i = big; i < by_size.size(); ++i) small.push_back(by_size[i].capacity);
  const size_t work = std::max(kMinSearchWork, kSearchWork / std::max<size_t>(small.size(), 1));
  const PipelinePacking packing(std::move(small), need_per_pipeline, work);
  auto searched = [&](size_t k, int found) -> int64_t {
    return k <= big ? int64_t(k) : found == INT32_MAX ? kImpossible : int64_t(big) + found;
  };
  std::vector<int64_t> greedy_stages(1, 0);  // greedy_stages[k]: its first k pipelines' stages
  for (const auto& g : greedy) greedy_stages.push_back(greedy_stages.back() + int64_t(g.size()));

  // s(k) = the fewer of the two; k maximises k^2 / s(k) (the smallest such k on ties).
  const size_t max_k = std::max(greedy.size(), big + packing.max_pipelines());
  size_t best_k = 0;
  int64_t best_stages = 0;
  result.stages_proven_minimal = true;
  for (size_t k = 1; k <= max_k; ++k) {
    const int64_t by_search = searched(k, k > big ? packing.stages(k - big) : 0);
    const int64_t by_greedy = k < greedy_stages.size() ? greedy_stages[k] : kImpossible;
    const int64_t stages = std::min(by_search, by_greedy);
    const int64_t lower = searched(k, k > big ? packing.lower_bound(k - big) : 0);
    auto narrow = [](int64_t v) { return int(std::min<int64_t>(v, INT32_MAX)); };
    result.options.push_back({int(k), narrow(stages), narrow(lower), by_greedy == kImpossible ? 0 : narrow(by_greedy)});
    if (stages != lower) result.stages_proven_minimal = false;
    if (best_k == 0 || int64_t(k * k) * best_stages > int64_t(best_k * best_k) * stages) {
      best_k = k;
      best_stages = stages;
    }
  }
  if (searched(max_k + 1, max_k + 1 > big ? packing.lower_bound(max_k + 1 - big) : 0) != kImpossible) {
    result.stages_proven_minimal = false;  // more pipelines might be possible
  }

  std::vector<std::vector<Candidate>> groups;
  if (best_k > 0 && best_k < greedy_stages.size() && greedy_stages[best_k] <= best_stages) {
    groups.assign(greedy.begin(), greedy.begin() + best_k);
  } else if (best_k > 0) {
    for (size_t b = 0; b < std::min(best_k, big); ++b) groups.push_back({by_size[b]});
    if (best_k > big) {
      for (const std::vector<int>& members : packing.pipelines(best_k - big)) {
        std::vector<Candidate> group;
        for (int m : members) group.push_back(by_size[big + size_t(m)]);
        groups.push_back(std::move(group));
      }
    }
  }
  for (const std::vector<Candidate>& group : groups) {
    for (const Candidate& c : group) remaining.erase(key_of(c));
  }

  for (std::vector<Candidate>& group : groups) {
    // The largest node opens the pipeline (embedding), the next largest closes it (head).
    std::sort(group.begin(), group.end(), [](const Candidate& a, const Candidate& b) {
      return a.capacity != b.capacity ? a.capacity > b.capacity : a.index < b.index;
    });
    if (group.size() > 1) std::rotate(group.begin() + 1, group.begin() + 2, group.end());
    std::vector<double> speeds;
    std::vector<int> caps;
    for (size_t s = 0; s < group.size(); ++s) {
      int cap = group[s].capacity;
      if (s == 0) cap -= extra_first;
      if (s + 1 == group.size()) cap -= extra_last;
      speeds.push_back(nodes[group[s].index].layers_per_second);
      caps.push_back(cap);
    }
    const std::vector<int> layers = water_fill(speeds, caps, L);
    if (layers.empty()) {
      // Covered in total but not stage by stage: more stages than layers, or an end stage too
      // small for its embedding or head. Its nodes stay for replicas rather than vanish.
      for (const Candidate& c : group) remaining.insert(key_of(c));
      continue;
    }
    Pipeline p;
    int begin = 0;
    double slowest = 0;
    for (size_t s = 0; s < group.size(); ++s) {
      const NodeCapacity& node = nodes[group[s].index];
      StageAssignment stage{node.id, begin, begin + layers[s], layers[s] / node.layers_per_second};
      begin = stage.end;
      p.latency_seconds += stage.seconds_per_token;
      slowest = std::max(slowest, stage.seconds_per_token);
      p.stages.push_back(stage);
    }
    p.tokens_per_second = slowest > 0 ? 1.0 / slowest : 0;
    result.tokens_per_second += p.tokens_per_second;
    result.pipelines.push_back(std::move(p));
  }

  // Leftover nodes replicate the slowest stage they can hold (its load is then shared).
  struct StageLoad {
    const StageAssignment* stage;
    bool first, last;
    int copies;
  };
  std::vector<StageLoad> loads;
  for (const Pipeline& p : result.pipelines) {
    for (size_t s = 0; s < p.stages.size(); ++s) loads.push_back({&p.stages[s], s == 0, s + 1 == p.stages.size(), 1});
  }
  std::vector<Candidate> leftovers;
  for (const Key& k : remaining) leftovers.push_back(candidate(k));
  for (const Key& k : spares) leftovers.push_back(candidate(k));
  std::sort(leftovers.begin(), leftovers.end(), [&](const Candidate& a, const Candidate& b) {
    const double sa = nodes[a.index].layers_per_second, sb = nodes[b.index].layers_per_second;
    return sa != sb ? sa > sb : a.index < b.index;
  });
  for (const Candidate& c : leftovers) {
    StageLoad* target = nullptr;
    for (StageLoad& l : loads) {
      const int needed = (l.stage->end - l.stage->begin) + (l.first ? extra_first : 0) + (l.last ? extra_last : 0);
      if (needed > c.capacity) continue;
      if (!target || l.stage->seconds_per_token / l.copies > target->stage->seconds_per_token / target->copies) {
        target = &l;
      }
    }
    const NodeCapacity& node = nodes[c.index];
    if (!target) {
      result.unused.push_back(node.id);
      continue;
    }
    ++target->copies;
    const int n_layers = target->stage->end - target->stage->begin;
    result.replicas.push_back({node.id, target->stage->begin, target->stage->end, n_layers / node.layers_per_second});
  }
  return result;
}

}  // namespace

double typical_link_rate(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model,
                         const AllocationConfig& config) {
  std::vector<double> rates;
  for (const NodeCapacity& n : nodes) {
    if (n.link_bytes_per_second > 0 && layer_capacity(n, model, config) > 0) rates.push_back(n.link_bytes_per_second);
  }
  if (rates.empty()) return 0;
  std::sort(rates.begin(), rates.end());
  const size_t n = rates.size();
  return n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
}

bool slow_link(double rate, double typical, const AllocationConfig& config) {
  return rate > 0 && rate < config.slow_link_ratio * typical;
}

Allocation allocate_layers(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model,
                           const AllocationConfig& config) {
  validate(nodes, model, config);
  const std::vector<bool> none(nodes.size(), false);
  Allocation all = allocate_among(nodes, none, model, config);
  // Nodes behind slow links that would be stages of a longer pipeline: without them, do the
  // others form as many pipelines?
  const double typical = typical_link_rate(nodes, model, config);
  const int64_t whole = pipeline_need(model);
  std::vector<bool> slow(nodes.size(), false);
  bool any_slow = false;
  for (size_t i = 0; i < nodes.size(); ++i) {
    slow[i] = slow_link(nodes[i].link_bytes_per_second, typical, config) && layer_capacity(nodes[i], model, config) < whole;
    any_slow |= slow[i];
  }
  if (!any_slow) return all;
  Allocation fast = allocate_among(nodes, slow, model, config);
  if (fast.pipelines.size() < all.pipelines.size()) return all;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (slow[i]) fast.slow_links.push_back(nodes[i].id);
  }
  return fast;
}

}  // namespace px::swarm
