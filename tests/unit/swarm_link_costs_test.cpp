// Measured links in the swarm's decisions: the rates nodes announce (link_costs.h), this node's
// probes (ClusterView), routing that counts a hop's bytes at its link's rate, and allocation and
// repair that keep stages off slow links while faster ones can take them.
#include <gtest/gtest.h>

#include "core/error.h"
#include "swarm/allocation.h"
#include "swarm/cluster_view.h"
#include "swarm/layer_scheduler.h"
#include "swarm/link_costs.h"
#include "unit/swarm_sample_node.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

constexpr double kFast = 100e6 / 8;   // 100 Mbit/s
constexpr double kSlow = 10e6 / 8;    // 10 Mbit/s

NodeAnnouncement node(const std::string& id, int begin, int end, const std::string& state = "ready") {
  NodeAnnouncement n = test::sample_node(id, begin, end, state);
  n.layers_per_second = 80000;  // fast stages: the links decide
  return n;
}

TEST(LinkCosts, ANodesRatesAreTheFastestMeasuredTowardsItAndFromItWhereItsOwnLinkLimits) {
  NodeAnnouncement a = node("00000000000000a1", 0, 4), b = node("00000000000000b1", 4, 8), c = node("00000000000000c1", 4, 8);
  NodeAnnouncement d = node("00000000000000d1", 4, 8), e = node("00000000000000e1", 0, 0, "joining");
  // Everyone reaches c slowly (its downlink); c sends fast. d's uplink is slow: it reaches a at
  // 10 Mbit/s where b does at 100. e has probed only c.
  a.links = {{b.node_id, 0.002, kFast}, {c.node_id, 0.002, kSlow}, {d.node_id, 0.002, kFast}};
  b.links = {{a.node_id, 0.002, kFast}, {c.node_id, 0.002, kSlow}};
  c.links = {{a.node_id, 0.002, kFast}, {b.node_id, 0.002, kFast}, {c.node_id, 0, 1e12}};  // itself: ignored
  d.links = {{a.node_id, 0.002, kSlow}};
  e.links = {{c.node_id, 0.002, kSlow * 0.99}};
  const auto rates = node_link_rates({a, b, c, d, e});
  EXPECT_DOUBLE_EQ(rates.at(c.node_id).inbound, kSlow);
  EXPECT_DOUBLE_EQ(rates.at(c.node_id).outbound, 0);  // nothing shows its uplink limiting
  EXPECT_DOUBLE_EQ(rates.at(c.node_id).stage(), kSlow);
  EXPECT_DOUBLE_EQ(rates.at(b.node_id).stage(), kFast);  // its slow link to c is c's doing
  EXPECT_DOUBLE_EQ(rates.at(d.node_id).inbound, kFast);
  EXPECT_DOUBLE_EQ(rates.at(d.node_id).outbound, kSlow);  // b reaches a 10x faster than d does
  EXPECT_DOUBLE_EQ(rates.at(d.node_id).stage(), kSlow);   // a stage needs both directions
  EXPECT_EQ(rates.count(e.node_id), 0u);  // unknown, not slow
  EXPECT_DOUBLE_EQ((NodeLinkRates{0, kSlow}).stage(), kSlow);  // one direction known
  EXPECT_EQ(announced_link(a, c.node_id)->bytes_per_second, kSlow);
  EXPECT_EQ(announced_link(a, "00000000000000ff"), nullptr);
}

ClusterView make_view(const std::string& self = "00000000000000a1") {
  ClusterViewConfig c;
  c.model_id = "m";
  c.n_layers = 8;
  c.max_running_per_stage = 4;
  c.self_id = self;
  c.hop_bytes_per_token = 4096 * 4;  // a 4096-wide model in f32: 16 KiB a token
  return ClusterView(c);
}

TEST(ClusterView, ProbesKeepTheFastestOfTheLastFewAndStagesAreAnnouncedFirst) {
  ClusterView view = make_view();
  view.update(node("00000000000000a1", 0, 4));  // this node
  view.update(node("00000000000000b1", 0, 0, "joining"));
  view.update(node("00000000000000c1", 4, 8));
  std::vector<std::string> due;
  for (const auto& n : view.probe_due(60s, 60s)) due.push_back(n.node_id);
  EXPECT_EQ(due, (std::vector<std::string>{"00000000000000b1", "00000000000000c1"}));  // never probed; not itself
  for (double rate : {3e6, 1e6, 2e6}) view.record_probe("00000000000000c1", rate);
  view.record_probe("00000000000000b1", 0);  // failed: probed, nothing learnt
  EXPECT_TRUE(view.probe_due(60s, 60s).empty());
  EXPECT_EQ(view.probe_due(0ms, 60s).size(), 2u);
  // One whose probes all failed is tried again after `retry`, one measured after `every`.
  const auto retried = view.probe_due(60s, 0ms);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].node_id, "00000000000000b1");
  view.set_rtt("00000000000000b1", 0.010);
  std::vector<LinkMeasure> links = view.measured_links();
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0], (LinkMeasure{"00000000000000c1", 0, 3e6}));  // holds layers: first
  EXPECT_EQ(links[1], (LinkMeasure{"00000000000000b1", 0.010, 0}));
  view.record_probe("00000000000000c1", 1e6);  // 3e6 is now older than the last three
  EXPECT_EQ(view.measured_links()[0].bytes_per_second, 2e6);
  EXPECT_EQ(view.to_json()["nodes"][2]["mbit_per_s"], 16.0);
}

// From this head, a first stage and two replicas of the second: `fast` and `slow` by the links
// the first stage measured towards them (`measured_by_first`), or else by what another node
// measured towards them.
std::vector<std::string> second_stages_chosen(bool measured_by_first, int requests) {
  ClusterView view = make_view("00000000000000e1");
  NodeAnnouncement head = node("00000000000000e1", 0, 0, "joining");
  NodeAnnouncement first = node("00000000000000a1", 0, 4);
  NodeAnnouncement fast = node("00000000000000b1", 4, 8), slow = node("00000000000000c1", 4, 8);
  const std::vector<LinkMeasure> links = {{fast.node_id, 0.002, kFast}, {slow.node_id, 0.002, kSlow}};
  (measured_by_first ? first : head).links = links;
  for (const auto& n : {head, first, fast, slow}) view.update(n);
  std::vector<std::string> chosen;
  for (int i = 0; i < requests; ++i) {
    const auto route = view.choose_route();
    EXPECT_TRUE(route);
    if (!route) break;
    std::vector<std::string> ids;
    for (const auto& s : route->stages) ids.push_back(s.node_id);
    chosen.push_back(ids.back());
    view.route_started(ids, RequestId(i));
  }
  return chosen;
}

TEST(ClusterView, AReplicaBehindASlowLinkTakesTrafficOnlyOnceTheFastOneIsSaturated) {
  // 16 KiB a token is 13 ms at 10 Mbit/s, 1.3 ms at 100: the fast replica takes requests until
  // it is saturated (4 in flight), then the slow one.
  const std::vector<std::string> want = {"00000000000000b1", "00000000000000b1", "00000000000000b1",
                                         "00000000000000b1", "00000000000000c1", "00000000000000c1"};
  EXPECT_EQ(second_stages_chosen(/*measured_by_first=*/true, 6), want);
  // The first stage measured neither: the head's measures towards them stand in.
  EXPECT_EQ(second_stages_chosen(/*measured_by_first=*/false, 6), want);
}

NodeCapacity capacity(const std::string& id, double rate, double speed = 100) {
  return {id, 500e6, speed, rate};  // 4 layers of 100 MB at ratio 0.9
}

ModelFootprint model() { return {8, 100e6, 0, 0}; }

std::vector<std::string> stage_ids(const Allocation& a) {
  std::vector<std::string> ids;
  for (const Pipeline& p : a.pipelines) {
    for (const StageAssignment& s : p.stages) ids.push_back(s.node_id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(Allocation, ANodeBehindASlowLinkIsAReplicaWhileOthersFormAsManyPipelines) {
  // Three nodes of 4 layers: one pipeline of two. The slow-linked one computes fastest, so it
  // would be a stage if links did not count.
  const std::vector<NodeCapacity> nodes = {capacity("a", kFast), capacity("b", kFast), capacity("c", kSlow, 200)};
  Allocation a = allocate_layers(nodes, model());
  EXPECT_EQ(stage_ids(a), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(a.replicas.size(), 1u);
  EXPECT_EQ(a.replicas[0].node_id, "c");
  EXPECT_EQ(a.slow_links, (std::vector<std::string>{"c"}));
  // Unknown rates, or rates within slow_link_ratio of the best: speed decides as before.
  a = allocate_layers({capacity("a", 0), capacity("b", 0), capacity("c", 0, 200)}, model());
  EXPECT_EQ(stage_ids(a).size(), 2u);
  EXPECT_TRUE(a.slow_links.empty());
  a = allocate_layers({capacity("a", kFast), capacity("b", kFast), capacity("c", kFast / 3, 200)}, model());
  EXPECT_TRUE(a.slow_links.empty());
  EXPECT_NE(std::find(stage_ids(a).begin(), stage_ids(a).end(), "c"), stage_ids(a).end());
  // Slow is against the median: one exceptionally fast node makes nobody else slow.
  a = allocate_layers({capacity("a", kFast), capacity("b", kFast), capacity("c", 1000 * kFast)}, model());
  EXPECT_TRUE(a.slow_links.empty());
  // Needed to cover the model at all: it serves.
  a = allocate_layers({capacity("a", kFast), capacity("c", kSlow)}, model());
  EXPECT_EQ(stage_ids(a), (std::vector<std::string>{"a", "c"}));
  // Holding the whole model alone it sends no hidden states: a pipeline of its own.
  a = allocate_layers({capacity("a", kFast), capacity("b", kFast), {"c", 2e9, 100, kSlow}}, model());
  EXPECT_EQ(a.pipelines.size(), 2u);
  EXPECT_TRUE(a.slow_links.empty());
  EXPECT_THROW(allocate_layers({capacity("a", -1)}, model()), Error);
}

SchedulerPolicy policy(int wait_nodes = 1) {
  SchedulerPolicy p;
  p.model = model();
  p.wait_nodes = wait_nodes;
  return p;
}

TEST(LayerScheduler, TheFirstAllocationKeepsStagesOffASlowLink) {
  std::vector<NodeAnnouncement> nodes = {node("00000000000000a1", 0, 0, "joining"), node("00000000000000b1", 0, 0, "joining"),
                                         node("00000000000000c1", 0, 0, "joining")};
  for (auto& n : nodes) n.free_memory = 500e6;
  nodes[2].layers_per_second = 200000;
  // Each measured the others; everything towards c crosses its 10 Mbit/s link.
  nodes[0].links = {{"00000000000000b1", 0.001, kFast}, {"00000000000000c1", 0.001, kSlow}};
  nodes[1].links = {{"00000000000000a1", 0.001, kFast}, {"00000000000000c1", 0.001, kSlow}};
  nodes[2].links = {{"00000000000000a1", 0.001, kFast}, {"00000000000000b1", 0.001, kFast}};
  const auto plan = plan_assignments(nodes, {}, policy(3));
  ASSERT_EQ(plan.size(), 3u);
  const LayerRange a = plan.at("00000000000000a1"), b = plan.at("00000000000000b1"), c = plan.at("00000000000000c1");
  EXPECT_TRUE((a == LayerRange{0, 4} && b == LayerRange{4, 8}) || (a == LayerRange{4, 8} && b == LayerRange{0, 4}));
  EXPECT_TRUE(c == a || c == b) << "the slow node replicates a stage";
}

TEST(LayerScheduler, ARepairGivesTheGapToAJoinerOnAFastLinkFirst) {
  // [0, 4) lost; two joiners could load it. The slow-linked one is smaller (the usual pick).
  std::vector<NodeAnnouncement> nodes = {node("0000000000000031", 4, 8), node("0000000000000032", 0, 0, "joining"),
                                         node("0000000000000033", 0, 0, "joining")};
  nodes[0].free_memory = 500e6;
  nodes[1].free_memory = 500e6;
  nodes[2].free_memory = 900e6;
  nodes[0].links = {{"0000000000000032", 0.001, kSlow}, {"0000000000000033", 0.001, kFast}};
  auto plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.count("0000000000000033"), 1u);
  // Without the measures the smaller one takes it, as before.
  nodes[0].links.clear();
  plan = plan_assignments(nodes, {}, policy());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.count("0000000000000032"), 1u);
}

}  // namespace
}  // namespace px::swarm
