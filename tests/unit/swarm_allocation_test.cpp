// Layer allocation as a pure function of announced node capacities.
#include "swarm/allocation.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"

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

}  // namespace
}  // namespace px::swarm
