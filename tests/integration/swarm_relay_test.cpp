// Nodes that accept no connections (--no-inbound: behind NAT, a firewall): they attach to the
// reachable nodes they dial and are reached through them — straight down the attach stream when
// the sender is the node they attached to (a reverse link), through a relay otherwise. And a node
// announcing an address nobody can reach is found out: reported to it, routed around, and then
// reached through the peers it attaches to.
#include "integration/swarm_harness.h"

namespace px::swarm_test {
namespace {

std::string p2p_of(ChildProcess& p) { return p.wait_for(R"(ready node=\S+ p2p=(\S+))", 1s); }

json node_in(const json& view, const std::string& id) {
  for (const auto& n : view["nodes"]) {
    if (n.value("id", "") == id) return n;
  }
  return {};
}

// Waits until the head sees node `id` announcing only relayed addresses ("<id>@host:port"), at
// least `relays` of them; returns them.
std::vector<std::string> wait_relayed(const std::string& api, const std::string& id, size_t relays) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<std::string> addresses;
  while (std::chrono::steady_clock::now() < deadline) {
    const json n = node_in(cluster(api), id);
    addresses = n.is_null() ? std::vector<std::string>{} : n.value("addresses", std::vector<std::string>{});
    const bool all_relayed = !addresses.empty() && std::all_of(addresses.begin(), addresses.end(), [&](const auto& a) {
      return a.rfind(id + "@", 0) == 0;
    });
    if (all_relayed && addresses.size() >= relays) return addresses;
    std::this_thread::sleep_for(100ms);
  }
  ADD_FAILURE() << "node " << id << " never announced " << relays << " relayed addresses: " << cluster(api).dump(1);
  return addresses;
}

TEST(NoInbound, AMiddleStageThatAcceptsNoConnectionsServesTheSingleNodesTokens) {
  single_node_reference();
  Head head({"--no-worker", "--wait-nodes", "3"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto first = worker(head.p2p, {"serve", "--layers", "0:3"});
  auto middle = worker(head.p2p, {"serve", "--layers", "3:6", "--no-inbound"});
  auto last = worker(head.p2p, {"serve", "--layers", "6:8"});
  EXPECT_NE(middle->output().find("listen=none"), std::string::npos) << "no peer socket: " << middle->output();
  const std::string id = node_id_of(*middle);
  // It attached to every reachable node — the head, the first and the last stage — so the first
  // stage reaches it down its own attach stream (a reverse link).
  const std::vector<std::string> addresses = wait_relayed(head.api, id, 3);
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), id + "@" + p2p_of(*first)), addresses.end());
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 3, 30s)) << cluster(head.api).dump(1);
  expect_same(complete_concurrently(head.api, 8), "through a --no-inbound middle stage");
}

TEST(NoInbound, TwoNeighboursThatAcceptNoConnectionsTalkThroughARelay) {
  single_node_reference();
  Head head({"--no-worker", "--wait-nodes", "2"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto relay = worker(head.p2p, {"join", "--no-worker", "--relay", "--port", "0"});
  const std::string relay_api = relay->wait_for(R"(api=(\S+))", 1s);
  auto first = worker(head.p2p, {"serve", "--layers", "0:4", "--no-inbound"});
  auto second = worker(head.p2p, {"serve", "--layers", "4:8", "--no-inbound"});
  wait_relayed(head.api, node_id_of(*second), 2);
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 2, 30s)) << cluster(head.api).dump(1);
  expect_same(complete_concurrently(head.api, 8), "two --no-inbound stages through a relay");
  // The first stage's hidden states to the second crossed the --relay node.
  EXPECT_GT(cluster(relay_api)["reach"].value("relayed_frames", 0), 0) << cluster(relay_api)["reach"].dump();
}

TEST(NoInbound, KillingTheRelayUnderEightStreamsMovesThemToAnotherWithNoFailedRequest) {
  constexpr int kTokens = 160;
  single_node_reference(kTokens);
  Head head({"--no-worker", "--wait-nodes", "2"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto relay_a = worker(head.p2p, {"join", "--no-worker", "--relay", "--port", "0"});
  auto relay_b = worker(head.p2p, {"join", "--no-worker", "--relay", "--port", "0"});
  auto first = worker(head.p2p, {"serve", "--layers", "0:4", "--no-inbound"});
  auto second = worker(head.p2p, {"serve", "--layers", "4:8", "--no-inbound"});
  // The second stage announces both relays (and the head); the first stage sends through the
  // relay listed first.
  const std::vector<std::string> addresses = wait_relayed(head.api, node_id_of(*second), 3);
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 2, 30s)) << cluster(head.api).dump(1);
  const std::string used = addresses.front().substr(addresses.front().find('@') + 1);
  ChildProcess* victim = used == p2p_of(*relay_a) ? relay_a.get() : used == p2p_of(*relay_b) ? relay_b.get() : nullptr;
  ASSERT_NE(victim, nullptr) << "the first address " << addresses.front() << " is not through a --relay node";
  const std::string victim_api = victim->wait_for(R"(api=(\S+))", 1s);
  const std::string victim_id = node_id_of(*victim);

  std::vector<std::future<Streamed>> running;
  for (int i = 0; i < 8; ++i) {
    running.push_back(std::async(std::launch::async, [api = head.api, i] { return stream(api, i, kTokens); }));
  }
  // Killed once it carries the streams' hidden states, while they run.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (cluster(victim_api)["reach"].value("relayed_frames", 0) < 64 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  size_t unfinished = 0;
  for (auto& f : running) unfinished += f.wait_for(0s) != std::future_status::ready;
  ASSERT_GE(unfinished, 4u) << "the streams ended before the relay was killed";  // some stop early (EOS)
  victim->signal(SIGKILL);
  const double worst = expect_streams_match_reference(running, kTokens, "with the relay killed mid-stream");
  std::printf("longest pause of a stream across the relay's death: %.2f s\n", worst);
  EXPECT_FALSE(head.process->wait_for("(peer " + victim_id + " failed: [0-9]+ requests move)", 10s).empty())
      << head.process->output();
  // The requests after it go through the other relay.
  expect_same(complete_concurrently(head.api, 8, kTokens), "after the relay died", kTokens);
}

TEST(Unreachable, ANodeAdvertisingAnAddressNobodyReachesIsReportedAndThenReachedThroughItsPeers) {
  single_node_reference();
  Head head({"--no-worker", "--wait-nodes", "3"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto first = worker(head.p2p, {"serve", "--layers", "0:4"});
  auto second = worker(head.p2p, {"serve", "--layers", "4:8"});
  // Nothing listens on port 1: what a wrong port forward looks like from outside.
  auto wrong = worker(head.p2p, {"serve", "--layers", "4:8", "--advertise", "127.0.0.1:1"});
  const std::string id = node_id_of(*wrong);
  json reported;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    const json n = node_in(cluster(head.api), id);
    if (!n.is_null() && !n["unreachable"].empty()) {
      reported = n["unreachable"];
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(reported.is_null()) << cluster(head.api).dump(1);
  EXPECT_EQ(reported[0].value("address", ""), "127.0.0.1:1") << reported.dump();
  // The node learns it from the head's heartbeat replies, and attaches to the peers it reaches:
  // from then on they reach it through those streams, never at the wrong address.
  EXPECT_FALSE(wrong->wait_for(R"((cannot reach this node at 127\.0\.0\.1:1))", 10s).empty()) << wrong->output();
  EXPECT_FALSE(wrong->wait_for(R"((attaching to reachable peers))", 10s).empty()) << wrong->output();
  const auto relayed_by = std::chrono::steady_clock::now() + 30s;
  bool relayed = false;
  while (!relayed && std::chrono::steady_clock::now() < relayed_by) {
    const json n = node_in(cluster(head.api), id);
    for (const auto& a : n.is_null() ? json::array() : n["addresses"]) relayed = relayed || a.get<std::string>().rfind(id + "@", 0) == 0;
    if (!relayed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(relayed) << cluster(head.api).dump(1);
  expect_same(complete_concurrently(head.api, 8), "beside a node at a wrong address");
}

}  // namespace
}  // namespace px::swarm_test
