// --advertise: a node whose peer port is reached through another address (a port forward, a
// NAT's mapping, a container's published port) announces that one. Here every node is reached
// only through a TCP forwarder (swarm/link_emulator.h): the head's and the worker's peers dial the addresses
// they advertise, the forwarders carry every byte between them, and the swarm answers as the
// single node does — also when the forwarders delay every byte by 20 ms, as a WAN link would.
#include "integration/swarm_harness.h"
#include "swarm/link_emulator.h"

namespace px::swarm_test {
namespace {

// The port a node binds, from its ready line ("... listen=127.0.0.1:PORT").
int listen_port(ChildProcess& p) { return std::stoi(p.wait_for(R"(listen=\S+:(\d+))", 5s)); }

// A head (no worker) and one worker, each reached only through a forwarder adding `delay` each
// way; checks that the swarm answers as the single node does through them, and returns the
// worker's entry in the head's /v1/cluster.
json serve_through_forwarders(std::chrono::milliseconds delay) {
  single_node_reference();
  swarm::LinkEmulator head_forward(delay), worker_forward(delay);
  Head head({"--no-worker", "--advertise", head_forward.address()});
  EXPECT_FALSE(head.api.empty()) << head.process->output();
  if (head.api.empty()) return {};
  EXPECT_EQ(head.p2p, head_forward.address()) << "the ready line names the advertised address";
  head_forward.forward_to(listen_port(*head.process));

  ChildProcess worker({"join", "-m", model_path(), "--peer", head_forward.address(), "--advertise",
                       worker_forward.address(), "--p2p-port", "0", "-t", "1", "--heartbeat-ms", "200",
                       "--expire-ms", "2000"});
  EXPECT_FALSE(worker.wait_for(R"((ready node=.*))", 60s).empty()) << worker.output();
  worker_forward.forward_to(listen_port(worker));
  EXPECT_TRUE(wait_for_cluster(head.api, 1, 1, 30s)) << cluster(head.api).dump(1);

  expect_same(complete_concurrently(head.api, 8), "through forwarded ports");
  // Both directions went through the forwarders: the head's chunks to the worker, its tokens back.
  EXPECT_GT(worker_forward.bytes_carried(), 0);
  EXPECT_GT(head_forward.bytes_carried(), 0);
  EXPECT_GE(worker_forward.connections(), 1);
  const json view = cluster(head.api);
  for (const auto& node : view["nodes"]) {
    if (node.value("address", "") == worker_forward.address()) return node;
  }
  ADD_FAILURE() << worker_forward.address() << " is not announced: " << view.dump(1);
  return {};
}

TEST(Advertise, NodesReachedOnlyThroughForwardedPortsServeTheSingleNodesTokens) {
  EXPECT_FALSE(serve_through_forwarders(0ms).empty());
}

TEST(WanLinks, ASwarmWhoseLinksAdd20msEachWayServesTheSingleNodesTokensAndMeasuresTheRtt) {
  const json worker = serve_through_forwarders(20ms);
  // The head's heartbeats reach the worker through its forwarder and come back: 40 ms or more.
  EXPECT_GE(worker.value("rtt_ms", 0.0), 35.0) << worker.dump(1);
}

TEST(Advertise, AnAddressWithoutAPortIsRefusedWithTheReason) {
  for (const std::string bad : {"10.0.0.1", "10.0.0.1:0", ":7000"}) {
    ChildProcess node({"join", "-m", model_path(), "--peer", "127.0.0.1:1", "--advertise", bad, "--p2p-port", "0"});
    EXPECT_NE(node.wait(20s), 0) << bad;
    EXPECT_NE(node.output().find(bad), std::string::npos) << node.output();
  }
}

}  // namespace
}  // namespace px::swarm_test
