// Measured links in a real swarm. Routing: of two replicas of the whole model, the one 40 ms
// away takes no request while the near one has room. Allocation: every node probes its links
// and announces the rates, and the
// scheduler keeps a node whose link crosses at 10 Mbit/s off the pipeline while two nodes on fast
// links form it; the slow one replicates a stage. It offers room for more layers than the
// others, so without its link measured it would open the pipeline. Peers reach it only through a forwarder that
// limits every connection to it to 10 Mbit/s (swarm/link_emulator.h); it reaches them directly.
#include "integration/swarm_harness.h"
#include "swarm/link_emulator.h"

namespace px::swarm_test {
namespace {

json node_in(const json& view, const std::string& id) {
  for (const auto& n : view["nodes"]) {
    if (n["id"] == id) return n;
  }
  return {};
}

TEST(LinkRates, ANodeBehindA10MbitLinkIsKeptOffThePipelineAndReplicatesAStage) {
  single_node_reference();
  Head head({"--no-worker", "--wait-nodes", "3"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto fast_a = worker(head.p2p, {"join", "--max-layers", "4"});
  auto fast_b = worker(head.p2p, {"join", "--max-layers", "4"});
  swarm::LinkEmulator slow_link(std::chrono::milliseconds(0), 10e6);
  ChildProcess slow({"join", "-m", model_path(), "--peer", head.p2p, "--max-layers", "6", "--advertise",
                     slow_link.address(), "--p2p-port", "0", "-t", "1", "--heartbeat-ms", "200", "--expire-ms", "2000"});
  ASSERT_FALSE(slow.wait_for(R"((ready node=.*))", 60s).empty()) << slow.output();
  slow_link.forward_to(std::stoi(slow.wait_for(R"(listen=\S+:(\d+))", 5s)));
  const std::string slow_id = node_id_of(slow), a_id = node_id_of(*fast_a), b_id = node_id_of(*fast_b);

  ASSERT_TRUE(wait_for_cluster(head.api, 1, 3, 60s)) << cluster(head.api).dump(1) << slow.output();
  const json view = cluster(head.api);
  const json a = node_in(view, a_id), b = node_in(view, b_id), s = node_in(view, slow_id);
  ASSERT_FALSE(a.empty() || b.empty() || s.empty()) << view.dump(1);
  // The fast two split the model; the slow one holds a copy of one of their ranges.
  EXPECT_EQ(a["layers"][1].get<int>() - a["layers"][0].get<int>(), 4) << view.dump(1);
  EXPECT_EQ(b["layers"][1].get<int>() - b["layers"][0].get<int>(), 4) << view.dump(1);
  EXPECT_NE(a["layers"], b["layers"]) << view.dump(1) << head.process->output();
  EXPECT_TRUE(s["layers"] == a["layers"] || s["layers"] == b["layers"]) << view.dump(1);
  // What the head measured: the slow link near its 10 Mbit/s, the others far faster.
  ASSERT_TRUE(s["mbit_per_s"].is_number()) << s.dump(1);
  EXPECT_LT(s["mbit_per_s"].get<double>(), 12.0) << s.dump(1);
  EXPECT_GT(s["mbit_per_s"].get<double>(), 3.0) << s.dump(1);
  ASSERT_TRUE(a["mbit_per_s"].is_number()) << a.dump(1);
  EXPECT_GT(a["mbit_per_s"].get<double>(), 50.0) << a.dump(1);
  // The workers announce what they measured too: a fast one, its link towards the slow one.
  json link;
  for (const auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(100ms)) {
    const json now = node_in(cluster(head.api), a_id);
    for (const auto& l : now.value("links", json::array())) {
      if (l["peer"] == slow_id && l["mbit_per_s"].is_number()) link = l;
    }
    if (!link.empty()) break;
  }
  ASSERT_FALSE(link.empty()) << cluster(head.api).dump(1);
  EXPECT_LT(link["mbit_per_s"].get<double>(), 12.0) << link.dump();

  expect_same(complete_concurrently(head.api, 8), "with a slow-linked replica");
}

TEST(LinkRates, AReplica40msAwayTakesNoRequestWhileTheNearOneHasRoom) {
  single_node_reference();
  Head head({"--no-worker"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto near = worker(head.p2p, {"serve", "--layers", "0:8"});
  swarm::LinkEmulator far_link(std::chrono::milliseconds(20));
  ChildProcess far({"serve", "-m", model_path(), "--layers", "0:8", "--peer", head.p2p, "--advertise",
                    far_link.address(), "--p2p-port", "0", "-t", "1", "--heartbeat-ms", "200", "--expire-ms", "2000"});
  ASSERT_FALSE(far.wait_for(R"((ready node=.*))", 60s).empty()) << far.output();
  far_link.forward_to(std::stoi(far.wait_for(R"(listen=\S+:(\d+))", 5s)));
  const std::string near_id = node_id_of(*near), far_id = node_id_of(far);
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 2, 60s)) << cluster(head.api).dump(1);
  // The head has measured the far one's round trip.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    const json n = node_in(cluster(head.api), far_id);
    if (n.contains("rtt_ms") && n["rtt_ms"].is_number() && n["rtt_ms"].get<double>() > 35) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GT(node_in(cluster(head.api), far_id).value("rtt_ms", 0.0), 35.0) << cluster(head.api).dump(1);

  expect_same(complete_concurrently(head.api, 8), "near and far replicas");
  const json routes = cluster(head.api)["routes"];
  EXPECT_GE(routes.size(), 8u);
  for (const auto& r : routes) EXPECT_EQ(r["nodes"], json::array({near_id})) << routes.dump(1);
}

TEST(LinkRates, A1MbitLinkIsMeasuredWithoutCostingAHeartbeat) {
  // A 128 KiB probe would hold this link for a second, and the heartbeats queued behind it on the
  // connection would miss their 400 ms deadline; the first, 16 KiB probe shows the link is slow.
  Head head({"--no-worker"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  swarm::LinkEmulator slow_link(std::chrono::milliseconds(0), 1e6);
  ChildProcess node({"serve", "-m", model_path(), "--layers", "0:8", "--peer", head.p2p, "--advertise",
                     slow_link.address(), "--p2p-port", "0", "-t", "1", "--heartbeat-ms", "200", "--expire-ms", "2000"});
  ASSERT_FALSE(node.wait_for(R"((ready node=.*))", 60s).empty()) << node.output();
  slow_link.forward_to(std::stoi(node.wait_for(R"(listen=\S+:(\d+))", 5s)));
  const std::string id = node_id_of(node);
  json n;
  for (const auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(100ms)) {
    n = node_in(cluster(head.api), id);
    if (n.contains("mbit_per_s") && n["mbit_per_s"].is_number()) break;
  }
  ASSERT_TRUE(n.contains("mbit_per_s") && n["mbit_per_s"].is_number()) << cluster(head.api).dump(1);
  EXPECT_GT(n["mbit_per_s"].get<double>(), 0.5) << n.dump(1);
  EXPECT_LT(n["mbit_per_s"].get<double>(), 1.3) << n.dump(1);
  std::this_thread::sleep_for(1s);  // heartbeats after the probe, too
  // Neither failed nor found unreachable: every heartbeat was answered in time.
  EXPECT_EQ(head.process->output().find("peer " + id), std::string::npos) << head.process->output();
  EXPECT_EQ(complete(head.api, 0, 4).status, 200);
}

}  // namespace
}  // namespace px::swarm_test
