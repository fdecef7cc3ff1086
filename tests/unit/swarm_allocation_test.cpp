// Layer allocation as a pure function of announced node capacities.
#include "swarm/allocation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "swarm/pipeline_packing.h"

namespace px::swarm {
namespace {

constexpr double kGB = 1e9;

ModelFootprint model(int layers, double layer_gb = 1.0) {
  return {layers, layer_gb * kGB, 0, 0};
}

// Every pipeline covers [0, n) with contiguous, non-empty stages on distinct nodes, and no
// node appears twice in the whole allocation.
void expect_valid(const Allocation& a, const ModelFootprint& m) {
  std::set<std::string> used;
  for (const Pipeline& p : a.pipelines) {
    int next = 0;
    for (const StageAssignment& s : p.stages) {
      EXPECT_EQ(s.begin, next);
      EXPECT_GT(s.end, s.begin);
      next = s.end;
      EXPECT_TRUE(used.insert(s.node_id).second) << s.node_id << " used twice";
    }
    EXPECT_EQ(next, m.n_layers);
  }
  for (const StageAssignment& r : a.replicas) EXPECT_TRUE(used.insert(r.node_id).second) << r.node_id;
  for (const std::string& id : a.unused) EXPECT_TRUE(used.insert(id).second) << id;
}

TEST(LayerAllocation, WaterFillingFollowsSpeedWithinCapacity) {
  EXPECT_EQ(water_fill({1, 3}, {100, 100}, 40), (std::vector<int>{10, 30}));
  EXPECT_EQ(water_fill({1, 3}, {100, 20}, 40), (std::vector<int>{20, 20}));  // capped
  EXPECT_EQ(water_fill({1, 1000}, {100, 100}, 10), (std::vector<int>{1, 9}));  // at least one layer
  EXPECT_TRUE(water_fill({1, 1}, {10, 10}, 30).empty());                       // cannot hold it
  const auto split = water_fill({2, 1, 1}, {50, 50, 50}, 31);
  EXPECT_EQ(split[0] + split[1] + split[2], 31);
  EXPECT_GE(split[0], 15);
}

TEST(LayerAllocation, NodesThatEachHoldTheModelServeAsOneStagePipelines) {
  // k^2 / s(k): four single-stage pipelines score 16/4 = 4, better than anything else.
  std::vector<NodeCapacity> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back({"n" + std::to_string(i), 40 * kGB, 100});
  const ModelFootprint m = model(32);
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_EQ(a.pipelines.size(), 4u);
  for (const Pipeline& p : a.pipelines) EXPECT_EQ(p.stages.size(), 1u);
  EXPECT_NEAR(a.tokens_per_second, 4 * 100.0 / 32, 1e-9);
}

TEST(LayerAllocation, SmallNodesFormMultiStagePipelines) {
  // Each node holds 9 layers (10 GB * 0.9): a 32-layer model needs 4 per pipeline.
  std::vector<NodeCapacity> nodes;
  for (int i = 0; i < 8; ++i) nodes.push_back({"n" + std::to_string(i), 10 * kGB, 50});
  const ModelFootprint m = model(32);
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_EQ(a.pipelines.size(), 2u);
  for (const Pipeline& p : a.pipelines) {
    EXPECT_EQ(p.stages.size(), 4u);
    for (const StageAssignment& s : p.stages) EXPECT_LE(s.end - s.begin, 9);
  }
}

TEST(LayerAllocation, FasterStagesGetMoreLayers) {
  std::vector<NodeCapacity> nodes = {{"slow", 30 * kGB, 10}, {"fast", 30 * kGB, 30}};
  const ModelFootprint m = model(40);
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_EQ(a.pipelines.size(), 1u);
  std::map<std::string, int> layers;
  for (const StageAssignment& s : a.pipelines[0].stages) layers[s.node_id] = s.end - s.begin;
  EXPECT_EQ(layers["fast"], 27);  // capacity 27 caps the 30 its speed would give it
  EXPECT_EQ(layers["slow"], 13);
}

TEST(LayerAllocation, EmbeddingAndHeadTakeRoomOnTheEndStages) {
  // 10 layers of 1 GB plus a 3 GB embedding and 3 GB head: 16 GB per pipeline.
  ModelFootprint m = model(10);
  m.embedding_bytes = 3 * kGB;
  m.head_bytes = 3 * kGB;
  const std::vector<NodeCapacity> nodes = {{"a", 10 * kGB, 10}, {"b", 10 * kGB, 10}};
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_EQ(a.pipelines.size(), 1u);
  for (const StageAssignment& s : a.pipelines[0].stages) EXPECT_LE(s.end - s.begin, 9 - 3);
}

TEST(LayerAllocation, LeftoverNodesReplicateTheSlowestStage) {
  // Equal memory: the two fastest nodes form the pipeline, the slowest is left over and copies
  // the pipeline's bottleneck stage (the one on "medium").
  std::vector<NodeCapacity> nodes = {{"spare", 20 * kGB, 5}, {"fast", 20 * kGB, 50}, {"medium", 20 * kGB, 20}};
  const ModelFootprint m = model(30);
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_EQ(a.pipelines.size(), 1u);
  ASSERT_EQ(a.replicas.size(), 1u);
  EXPECT_EQ(a.replicas[0].node_id, "spare");
  for (const StageAssignment& s : a.pipelines[0].stages) {
    if (s.node_id == "medium") {
      EXPECT_EQ(a.replicas[0].begin, s.begin);
      EXPECT_EQ(a.replicas[0].end, s.end);
    }
  }
}

TEST(LayerAllocation, TooLittleMemoryGivesNoPipelineAndTinyNodesAreUnused) {
  const std::vector<NodeCapacity> nodes = {{"a", 5 * kGB, 10}, {"b", 5 * kGB, 10}, {"tiny", 0.5 * kGB, 10}};
  const Allocation a = allocate_layers(nodes, model(32));
  EXPECT_TRUE(a.pipelines.empty());
  EXPECT_EQ(a.tokens_per_second, 0);
  EXPECT_NE(std::find(a.unused.begin(), a.unused.end(), "tiny"), a.unused.end());
}

TEST(LayerAllocation, RejectsInvalidAnnouncements) {
  EXPECT_THROW(allocate_layers({{"a", -1, 10}}, model(4)), Error);
  EXPECT_THROW(allocate_layers({{"a", 1e9, std::nan("")}}, model(4)), Error);
  EXPECT_THROW(allocate_layers({}, model(0)), Error);
  EXPECT_THROW(allocate_layers({}, {4, 0, 0, 0}), Error);
}

TEST(LayerAllocation, HeterogeneousSwarmIsAlwaysValid) {
  // 300 nodes, memory 8-80 GB, speeds 10x apart: every node used at most once, every pipeline
  // complete, and more pipelines than a single one.
  std::vector<NodeCapacity> nodes;
  uint64_t x = 12345;
  auto next = [&] { return (x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 11; };
  for (int i = 0; i < 300; ++i) {
    nodes.push_back({"n" + std::to_string(i), (8 + double(next() % 73)) * kGB, 10.0 + double(next() % 91)});
  }
  const ModelFootprint m{80, 1.7 * kGB, 2 * kGB, 2 * kGB};
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  EXPECT_GT(a.pipelines.size(), 10u);
}

// s*(k) for k = 1.. by brute force: every assignment of each node to one of the groups or to
// none (groups numbered in order of first use, so each partition is seen once); a group whose
// capacities reach `need` is a pipeline. best[k - 1]: fewest nodes in exactly k pipelines.
std::vector<int> brute_force_stages(const std::vector<int>& caps, int64_t need) {
  std::vector<int> best, group(caps.size());
  auto visit = [&](auto&& self, size_t i, int groups) -> void {
    if (i == caps.size()) {
      std::vector<int64_t> sum(size_t(groups) + 1, 0);
      std::vector<int> size(size_t(groups) + 1, 0);
      for (size_t j = 0; j < caps.size(); ++j) sum[group[j]] += caps[j], size[group[j]] += 1;
      int k = 0, stages = 0;
      for (int g = 1; g <= groups; ++g) {
        if (sum[g] >= need) ++k, stages += size[g];
      }
      if (k == 0) return;
      if (best.size() < size_t(k)) best.resize(size_t(k), INT_MAX);
      best[k - 1] = std::min(best[k - 1], stages);
      return;
    }
    for (int g = 0; g <= groups + 1; ++g) {  // 0: no group
      group[i] = g;
      self(self, i + 1, std::max(groups, g));
    }
  };
  visit(visit, 0, 0);
  return best;
}

// Nodes of exactly these layer capacities: 1 GB layers, all memory given to weights.
std::vector<NodeCapacity> nodes_of(const std::vector<int>& caps, std::mt19937& rng) {
  std::vector<NodeCapacity> nodes;
  for (size_t i = 0; i < caps.size(); ++i) {
    nodes.push_back({"n" + std::to_string(i), caps[i] * kGB, 10.0 + double(rng() % 90)});
  }
  return nodes;
}

constexpr AllocationConfig kAllMemory{1.0};

// The smallest k maximising k^2 / s(k).
size_t best_pipelines(const std::vector<int>& stages) {
  size_t best = 0;
  for (size_t k = 1; k <= stages.size(); ++k) {
    if (best == 0 || int64_t(k * k) * stages[best - 1] > int64_t(best * best) * stages[k - 1]) best = k;
  }
  return best;
}

size_t total_stages(const Allocation& a) {
  size_t total = 0;
  for (const Pipeline& p : a.pipelines) total += p.stages.size();
  return total;
}

TEST(LayerAllocation, DynamicProgrammeMatchesBruteForceOnSmallSwarms) {
  std::mt19937 rng(20240611);
  int instances = 0, beats_greedy = 0;
  for (int64_t need : {3, 7, 10, 16, 29}) {
    for (int trial = 0; trial < 60; ++trial) {
      const size_t n = 1 + rng() % 9;
      std::vector<int> caps;  // a few nodes hold the model alone
      for (size_t i = 0; i < n; ++i) caps.push_back(1 + int(rng() % uint32_t(need + need / 3)));
      const std::vector<int> expected = brute_force_stages(caps, need);
      const ModelFootprint m = model(int(need));
      const Allocation a = allocate_layers(nodes_of(caps, rng), m, kAllMemory);
      SCOPED_TRACE(::testing::Message() << "need " << need << ", trial " << trial);
      expect_valid(a, m);
      ASSERT_EQ(a.options.size(), expected.size());
      for (size_t k = 1; k <= expected.size(); ++k) {
        EXPECT_EQ(a.options[k - 1].pipelines, int(k));
        EXPECT_EQ(a.options[k - 1].stages, expected[k - 1]) << "k = " << k;
        EXPECT_EQ(a.options[k - 1].stages_lower_bound, expected[k - 1]) << "k = " << k;
        const int greedy = a.options[k - 1].greedy_stages;
        if (greedy == 0 || greedy > expected[k - 1]) ++beats_greedy;
      }
      EXPECT_TRUE(a.stages_proven_minimal);
      const size_t k = best_pipelines(expected);
      EXPECT_EQ(a.pipelines.size(), k);
      if (k > 0) {
        EXPECT_EQ(total_stages(a), size_t(expected[k - 1]));
      }
      ++instances;
    }
  }
  EXPECT_EQ(instances, 300);
  EXPECT_GT(beats_greedy, 0);  // the instances include ones the greedy packing gets wrong
}

TEST(LayerAllocation, FindsPipelinesTheGreedyPackingMisses) {
  std::mt19937 rng(1);
  const ModelFootprint m = model(10);
  // Greedy: 8 + 6 (best fit for the 2 still needed), then 7 + 1 + 1 falls short: one pipeline.
  // Optimal: 8 + 1 + 1 and 7 + 6, two pipelines from five stages (4/5 beats 1/2).
  const Allocation two = allocate_layers(nodes_of({8, 7, 6, 1, 1}, rng), m, kAllMemory);
  expect_valid(two, m);
  ASSERT_EQ(two.options.size(), 2u);
  EXPECT_EQ(two.options[1].stages, 5);
  EXPECT_EQ(two.options[1].greedy_stages, 0);
  EXPECT_EQ(two.pipelines.size(), 2u);
  EXPECT_TRUE(two.stages_proven_minimal);
  // 7 + 3, 7 + 2 + 1, 6 + 6: three pipelines from seven stages; greedy stops at two.
  const Allocation three = allocate_layers(nodes_of({7, 7, 6, 6, 3, 2, 1}, rng), m, kAllMemory);
  expect_valid(three, m);
  ASSERT_EQ(three.pipelines.size(), 3u);
  EXPECT_EQ(total_stages(three), 7u);
  EXPECT_EQ(three.options[2].greedy_stages, 0);
  // The textbook case for first fit: 6 + 4, 6 + 4, 5 + 5 (best fit finds it too).
  const Allocation pairs = allocate_layers(nodes_of({6, 6, 5, 5, 4, 4}, rng), m, kAllMemory);
  expect_valid(pairs, m);
  ASSERT_EQ(pairs.pipelines.size(), 3u);
  EXPECT_EQ(total_stages(pairs), 6u);
  EXPECT_TRUE(pairs.stages_proven_minimal);
}

TEST(LayerAllocation, CappedSearchStillGivesValidPackingsAndSoundBounds) {
  // With the smallest beam the programme drops states, yet every packing it reports is real
  // and every lower bound holds.
  std::mt19937 rng(7);
  int dropped = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t need = 5 + int64_t(rng() % 20);
    std::vector<int> caps;
    for (size_t i = 0, n = 1 + rng() % 9; i < n; ++i) caps.push_back(1 + int(rng() % uint32_t(need - 1)));
    std::sort(caps.rbegin(), caps.rend());
    const std::vector<int> expected = brute_force_stages(caps, need);
    const PipelinePacking packing(caps, need, 1);
    dropped += !packing.exact();
    ASSERT_LE(packing.max_pipelines(), expected.size());
    for (size_t k = 1; k <= expected.size() + 1; ++k) {
      const int truth = k <= expected.size() ? expected[k - 1] : INT_MAX;
      EXPECT_LE(packing.lower_bound(k), truth) << "trial " << trial << ", k = " << k;
      if (k > packing.max_pipelines()) continue;
      EXPECT_GE(packing.stages(k), truth);
      const std::vector<std::vector<int>> pipelines = packing.pipelines(k);
      ASSERT_EQ(pipelines.size(), k);
      std::set<int> used;
      size_t members = 0;
      for (const std::vector<int>& p : pipelines) {
        int64_t sum = 0;
        for (int j : p) sum += caps[size_t(j)], used.insert(j), ++members;
        EXPECT_GE(sum, need);
      }
      EXPECT_EQ(used.size(), members);  // no node in two pipelines
      EXPECT_EQ(members, size_t(packing.stages(k)));
    }
  }
  EXPECT_GT(dropped, 0);
  EXPECT_THROW(PipelinePacking({3, 5}, 10, 100), std::invalid_argument);  // not largest first
  EXPECT_THROW(PipelinePacking({10}, 10, 100), std::invalid_argument);    // holds it alone
}

TEST(LayerAllocation, LargeSwarmIsNeverWorseThanTheGreedyPacking) {
  std::vector<NodeCapacity> nodes;
  uint64_t x = 99;
  auto next = [&] { return (x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 11; };
  for (int i = 0; i < 400; ++i) nodes.push_back({"n" + std::to_string(i), (8 + double(next() % 73)) * kGB, 100});
  const ModelFootprint m{80, 1.75 * kGB, 2.1 * kGB, 2.1 * kGB};
  const Allocation a = allocate_layers(nodes, m);
  expect_valid(a, m);
  ASSERT_FALSE(a.options.empty());
  for (const PipelineOption& o : a.options) {
    if (o.greedy_stages > 0) {
      EXPECT_LE(o.stages, o.greedy_stages) << "k = " << o.pipelines;
    }
    EXPECT_LE(o.stages_lower_bound, o.stages) << "k = " << o.pipelines;
    EXPECT_GE(o.stages, 3 * o.pipelines);  // no node holds more than 41 of the 84 layers needed
  }
  const PipelineOption& chosen = a.options[a.pipelines.size() - 1];
  EXPECT_EQ(total_stages(a), size_t(chosen.stages));
}

TEST(LayerAllocation, GroupsWaterFillingCannotSplitLeaveTheirNodesUnused) {
  // Three nodes of 3 layers cover 4 layers + a 5-layer embedding in total, but no stage can hold
  // the embedding and a layer: no pipeline, and every node is still accounted for.
  ModelFootprint m = model(4);
  m.embedding_bytes = 5 * kGB;
  const std::vector<NodeCapacity> nodes = {{"a", 3 * kGB, 10}, {"b", 3 * kGB, 10}, {"c", 3 * kGB, 10}};
  const Allocation a = allocate_layers(nodes, m, kAllMemory);
  EXPECT_TRUE(a.pipelines.empty());
  EXPECT_EQ(a.unused.size(), 3u);
  ASSERT_EQ(a.options.size(), 1u);  // the capacity model sees one pipeline of three stages
  EXPECT_EQ(a.options[0].stages, 3);
}

}  // namespace
}  // namespace px::swarm
