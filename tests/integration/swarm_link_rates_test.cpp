// Measured links in a real swarm: every node probes its links and announces the rates, and the
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
  EXPECT_NE(a["layers"], b["layers"]);
  EXPECT_TRUE(s["layers"] == a["layers"] || s["layers"] == b["layers"]) << view.dump(1);
  // What the head measured: the slow link near its 10 Mbit/s, the others far faster.
  ASSERT_TRUE(s["mbit_per_s"].is_number()) << s.dump(1);
  EXPECT_LT(s["mbit_per_s"].get<double>(), 12.0) << s.dump(1);
  EXPECT_GT(s["mbit_per_s"].get<double>(), 3.0) << s.dump(1);
  ASSERT_TRUE(a["mbit_per_s"].is_number()) << a.dump(1);
  EXPECT_GT(a["mbit_per_s"].get<double>(), 50.0) << a.dump(1);
  // The workers announce what they measured too: each fast one, its link towards the slow one.
  bool announced = false;
  for (const auto& link : a["links"]) {
    if (link["peer"] == slow_id && link["mbit_per_s"].is_number()) announced = link["mbit_per_s"].get<double>() < 12.0;
  }
  EXPECT_TRUE(announced) << a.dump(1);

  expect_same(complete_concurrently(head.api, 8), "with a slow-linked replica");
}

}  // namespace
}  // namespace px::swarm_test
