// The swarm's pure decision logic: the cluster view (freshness, stale DHT copies, routing over
// ready stages with this head's own load) and the layer scheduler (who gets which layers, moving
// as few as possible).
#include <gtest/gtest.h>

#include <thread>

#include "swarm/cluster_view.h"
#include "swarm/layer_scheduler.h"
#include "unit/swarm_sample_node.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

NodeAnnouncement node(const std::string& id, int begin, int end, const std::string& state = "ready",
                      uint64_t sequence = 1) {
  return test::sample_node(id, begin, end, state, sequence);
}

ClusterView make_view(std::chrono::milliseconds expire = 5000ms) {
  ClusterViewConfig c;
  c.model_id = "m";
  c.n_layers = 8;
  c.expire_after = expire;
  c.max_running_per_stage = 4;
  return ClusterView(c);
}

TEST(ClusterView, RoutesOverReadyStagesInLayerOrder) {
  ClusterView view = make_view();
  view.update(node("00000000000000a1", 0, 4));
  view.update(node("00000000000000a2", 4, 8));
  view.update(node("00000000000000a3", 4, 8, "loading"));
  view.update(node("00000000000000a4", 0, 8, "draining"));
  auto other_model = node("00000000000000a5", 0, 8);
  other_model.model_id = "other";
  view.update(other_model);
  const auto route = view.choose_route();
  ASSERT_TRUE(route);
  ASSERT_EQ(route->stages.size(), 2u);
  EXPECT_EQ(route->stages[0].node_id, "00000000000000a1");
  EXPECT_EQ(route->stages[1].node_id, "00000000000000a2");
  EXPECT_FALSE(view.choose_route({"00000000000000a2"}));  // avoiding it leaves no cover
}

TEST(ClusterView, InFlightRequestsSpreadOverReplicas) {
  ClusterView view = make_view();
  view.update(node("00000000000000b1", 0, 8));
  view.update(node("00000000000000b2", 0, 8));
  std::map<std::string, int> used;
  for (int i = 0; i < 8; ++i) {
    const auto route = view.choose_route();
    ASSERT_TRUE(route);
    ++used[route->stages[0].node_id];
    view.route_started({route->stages[0].node_id}, RequestId(i));
  }
  EXPECT_EQ(used["00000000000000b1"], 4);
  EXPECT_EQ(used["00000000000000b2"], 4);
}

TEST(ClusterView, AFarReplicaTakesTrafficOnlyOnceTheNearOneIsSaturated) {
  ClusterView view = make_view();  // a stage saturates at 4 requests in flight
  // Fast stages (0.1 ms a token): load alone would never outweigh 39 ms of round trip.
  NodeAnnouncement near = node("00000000000000d1", 0, 8), far = node("00000000000000d2", 0, 8);
  near.layers_per_second = far.layers_per_second = 80000;
  view.update(near);  // 1 ms away
  view.update(far);   // 40 ms away
  view.set_rtt("00000000000000d1", 0.001);
  view.set_rtt("00000000000000d2", 0.040);
  std::vector<std::string> chosen;
  for (int i = 0; i < 6; ++i) {
    const auto route = view.choose_route();
    ASSERT_TRUE(route);
    chosen.push_back(route->stages[0].node_id);
    view.route_started({route->stages[0].node_id}, RequestId(i));
  }
  const std::vector<std::string> want = {"00000000000000d1", "00000000000000d1", "00000000000000d1", "00000000000000d1",
                                         "00000000000000d2", "00000000000000d2"};
  EXPECT_EQ(chosen, want);
  view.route_ended({"00000000000000d1"});  // room near again: it is preferred
  EXPECT_EQ(view.choose_route()->stages[0].node_id, "00000000000000d1");
}

TEST(ClusterView, StaleCopiesNeverKeepAVanishedPeerAlive) {
  ClusterView view = make_view(300ms);
  const auto n = node("00000000000000c1", 0, 8, "ready", 5);
  view.update(n);
  ASSERT_EQ(view.live().size(), 1u);
  // The DHT keeps handing out the same announcement: it does not refresh the peer.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(50ms);
    view.update(n);
  }
  EXPECT_TRUE(view.live().empty());
  // Removed after failed heartbeats: a newer copy from the DHT is ignored for a while, the peer
  // itself (a heartbeat) brings it back.
  view.update(node("00000000000000c1", 0, 8, "ready", 6));
  view.remove("00000000000000c1");
  view.update(node("00000000000000c1", 0, 8, "ready", 7));
  EXPECT_TRUE(view.live().empty());
  view.update(node("00000000000000c1", 0, 8, "ready", 8), /*direct=*/true);
  EXPECT_EQ(view.live().size(), 1u);
}

TEST(ClusterView, JsonListsNodesPipelinesAndRoutes) {
  ClusterView view = make_view();
  view.update(node("00000000000000d1", 0, 4));
  view.update(node("00000000000000d2", 4, 8));
  view.update(node("00000000000000d3", 0, 8));
  view.route_started({"00000000000000d3"}, 42);
  const auto j = view.to_json();
  EXPECT_EQ(j["nodes"].size(), 3u);
  ASSERT_EQ(j["pipelines"].size(), 2u);
  EXPECT_EQ(j["pipelines"][0].size(), 1u);  // the single-stage pipeline is cheaper
  EXPECT_EQ(j["pipelines"][1].size(), 2u);
  ASSERT_EQ(j["routes"].size(), 1u);
  EXPECT_EQ(j["routes"][0]["request"], 42);
}

SchedulerPolicy policy(int wait_nodes = 1) {
  SchedulerPolicy p;
  p.model.n_layers = 8;
  p.model.layer_bytes = 100e6;  // a node with 1 GB holds 9 layers at ratio 0.9
  p.wait_nodes = wait_nodes;
  return p;
}

TEST(LayerScheduler, FirstAllocationWaitsForEnoughNodesThenCoversTheModel) {
  std::vector<NodeAnnouncement> nodes = {node("00000000000000e1", 0, 0, "joining"), node("00000000000000e0", 0, 0, "joining")};
  nodes[0].free_memory = 500e6;  // 4 layers
  nodes[1].free_memory = 0;      // a head without a worker: not one of the nodes waited for
  EXPECT_TRUE(plan_assignments(nodes, {}, policy(2)).empty());
  nodes.pop_back();
  nodes.push_back(node("00000000000000e2", 0, 0, "joining"));
  nodes[1].free_memory = 500e6;
  const auto plan = plan_assignments(nodes, {}, policy(2));
  ASSERT_EQ(plan.size(), 2u);
  const LayerRange a = plan.at("00000000000000e1"), b = plan.at("00000000000000e2");
  EXPECT_EQ(std::min(a.begin, b.begin), 0);
  EXPECT_EQ(std::max(a.end, b.end), 8);
  EXPECT_TRUE(a.end == b.begin || b.end == a.begin);
}

TEST(LayerScheduler, AJoiningNodeMovesNobody) {
  std::vector<NodeAnnouncement> nodes = {node("00000000000000f1", 0, 4), node("00000000000000f2", 4, 8)};
  nodes[1].layers_per_second = 100;  // the slow stage: the replica goes there
  nodes.push_back(node("00000000000000f3", 0, 0, "joining"));
  nodes[2].free_memory = 500e6;
  auto plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.at("00000000000000f3"), (LayerRange{4, 8}));
  // One that can hold everything becomes a pipeline of its own.
  nodes[2].free_memory = 2e9;
  plan = plan_assignments(nodes, {}, policy());
  EXPECT_EQ(plan.at("00000000000000f3"), (LayerRange{0, 8}));
  // Too small for any stage: unused.
  nodes[2].free_memory = 150e6;
  EXPECT_TRUE(plan_assignments(nodes, {}, policy()).empty());
}

TEST(LayerScheduler, LostCoverageReallocatesButNotPinnedNodes) {
  // [4, 8) left: the survivor and a newcomer are reallocated; the pinned node is not touched.
  std::vector<NodeAnnouncement> nodes = {node("0000000000000011", 0, 4), node("0000000000000012", 0, 4),
                                         node("0000000000000013", 0, 0, "joining")};
  for (auto& n : nodes) n.free_memory = 500e6;
  const auto plan = plan_assignments(nodes, {"0000000000000012"}, policy());
  EXPECT_EQ(plan.count("0000000000000012"), 0u);
  ASSERT_EQ(plan.count("0000000000000013"), 1u);
  // Whoever keeps [0, 4) is not told anything.
  if (plan.count("0000000000000011")) {
    EXPECT_NE(plan.at("0000000000000011"), (LayerRange{0, 4}));
  }
  EXPECT_FALSE(covers_model({node("0000000000000011", 0, 4)}, 8));
  EXPECT_TRUE(covers_model({node("0000000000000011", 0, 4), node("0000000000000012", 4, 8)}, 8));
}


TEST(LayerScheduler, AJoinerRestoresTheRangeWithTheFewestReplicas) {
  // Two pipelines [0, 4) + [4, 8); a failure took one [0, 4). The newcomer restores that
  // pipeline, although [4, 8) is the slower range.
  std::vector<NodeAnnouncement> nodes = {node("0000000000000021", 0, 4), node("0000000000000022", 4, 8),
                                         node("0000000000000023", 4, 8), node("0000000000000024", 0, 0, "joining")};
  nodes[1].layers_per_second = nodes[2].layers_per_second = 100;
  nodes[3].free_memory = 500e6;  // 4 layers
  const auto plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.at("0000000000000024"), (LayerRange{0, 4}));
}

TEST(LayerScheduler, LostCoverageIsRepairedWhereItIsWithoutMovingTheSurvivors) {
  // Both holders of [0, 4) are gone; the two [4, 8) stages keep their range, the newcomer
  // alone loads the gap.
  std::vector<NodeAnnouncement> nodes = {node("0000000000000031", 4, 8), node("0000000000000032", 4, 8),
                                         node("0000000000000033", 0, 0, "joining")};
  for (auto& n : nodes) n.free_memory = 500e6;
  auto plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.at("0000000000000033"), (LayerRange{0, 4}));
  // With nobody joining, one of the two [4, 8) replicas moves into the gap; the other stays.
  nodes.pop_back();
  plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.begin()->second, (LayerRange{0, 4}));
  // However few nodes are left of the --wait-nodes the swarm started with.
  plan = plan_assignments(nodes, {}, policy(/*wait_nodes=*/4));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.begin()->second, (LayerRange{0, 4}));
  // A gap whose stage is already loading needs nobody else.
  nodes.push_back(node("0000000000000034", 0, 4, "loading"));
  EXPECT_TRUE(plan_assignments(nodes, {}, policy()).empty());
}

TEST(LayerScheduler, ARepairNeverTakesTheLastCopyOfARange) {
  // [0, 4) and [4, 6) have one holder each, [6, 8) none, and nobody joins: no node may move
  // without opening another gap, so the full allocation re-plans (every layer covered again).
  std::vector<NodeAnnouncement> nodes = {node("0000000000000041", 0, 4), node("0000000000000042", 4, 6)};
  for (auto& n : nodes) n.free_memory = 500e6;
  const auto plan = plan_assignments(nodes, {}, policy());
  ASSERT_FALSE(plan.empty());
  std::vector<NodeAnnouncement> after = nodes;
  for (auto& n : after) {
    if (plan.count(n.node_id)) n.layer_begin = plan.at(n.node_id).begin, n.layer_end = plan.at(n.node_id).end;
  }
  EXPECT_TRUE(covers_model(after, 8));
}

}  // namespace
}  // namespace px::swarm
