// No request lost while the swarm changes under it (the root causes an outside chaos run found):
// a node restarted on a dead node's port, with another range, must take nothing meant for the
// dead one; a stalled node that alone held a range must not hold requests for longer than the
// heartbeat deadline plus the time to load its range elsewhere. The progress watchdog is off in
// these swarms (--progress-timeout 0), so only the mechanism under test can save a request.
#include "integration/swarm_harness.h"

namespace px::swarm_test {
namespace {

constexpr int kTokens = 96;

std::vector<std::future<Streamed>> start_streams(const std::string& api) {
  std::vector<std::future<Streamed>> running;
  for (int i = 0; i < 8; ++i) {
    running.push_back(std::async(std::launch::async, [api, i] { return stream(api, i, kTokens); }));
  }
  return running;
}

bool still_running(std::vector<std::future<Streamed>>& running) {
  for (auto& f : running) {
    if (f.wait_for(0s) != std::future_status::ready) return true;
  }
  return false;
}

std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }

TEST(SwarmChurn, ANodeRestartedOnADeadNodesPortWithAnotherRangeTakesNothingMeantForIt) {
  single_node_reference(kTokens);
  Head head({"--no-worker", "--progress-timeout", "0", "--route-wait", "60"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (const char* range : {"0:4", "4:8", "0:4", "4:8"}) workers.push_back(worker(head.p2p, {"serve", "--layers", range}));
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 4, 30s)) << cluster(head.api).dump(1);
  const std::string victim_p2p = workers[1]->wait_for(R"(p2p=(\S+))", 1s);
  ASSERT_FALSE(victim_p2p.empty());

  auto running = start_streams(head.api);
  std::this_thread::sleep_for(100ms);  // the streams are under way on both pipelines
  ASSERT_TRUE(still_running(running));
  workers[1]->signal(SIGKILL);
  workers[1]->wait(10s);
  // At once, on the same port, a node holding [2, 8): a chunk meant for the dead node's [4, 8)
  // would be computed from the wrong layer there.
  workers[1] = worker(head.p2p, {"serve", "--layers", "2:8", "--p2p-port", port_of(victim_p2p)});
  ASSERT_EQ(workers[1]->wait_for(R"(p2p=(\S+))", 1s), victim_p2p) << "the port was not reused";
  expect_streams_match_reference(running, kTokens, "after a restart on the same port");
}

TEST(SwarmChurn, AStalledSoleReplicaIsReplacedWithoutWaitingForIt) {
  single_node_reference(kTokens);
  // Three workers that hold half the model each: one pipeline and a spare replica of one half.
  Head head({"--no-worker", "--wait-nodes", "3", "--progress-timeout", "0", "--route-wait", "60"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(worker(head.p2p, {"join", "--max-layers", "4"}));
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 3, 30s)) << cluster(head.api).dump(1);
  // The half that only one node holds.
  const json nodes = cluster(head.api)["nodes"];
  std::map<std::pair<int, int>, std::vector<std::string>> holders;
  for (const auto& node : nodes) {
    const int begin = node["layers"][0].get<int>(), end = node["layers"][1].get<int>();
    if (node["state"] == "ready" && end > begin) holders[{begin, end}].push_back(node["address"].get<std::string>());
  }
  std::string sole;
  for (const auto& [range, addresses] : holders) {
    if (addresses.size() == 1) sole = addresses[0];
  }
  ASSERT_FALSE(sole.empty()) << nodes.dump(1);
  ChildProcess* victim = nullptr;
  for (auto& w : workers) {
    if (w->wait_for(R"(p2p=(\S+))", 1s) == sole) victim = w.get();
  }
  ASSERT_NE(victim, nullptr);

  auto running = start_streams(head.api);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(still_running(running));
  constexpr auto kStall = 8s;
  victim->signal(SIGSTOP);
  std::this_thread::sleep_for(kStall);
  victim->signal(SIGCONT);
  const double worst = expect_streams_match_reference(running, kTokens, "after stalling the sole replica");
  // The spare replica took the stalled half over (heartbeat deadline ~1.2 s, then a load):
  // nobody waited for the stalled node to wake up.
  EXPECT_LT(worst, std::chrono::duration<double>(kStall).count() - 2) << cluster(head.api).dump(1);
}

}  // namespace
}  // namespace px::swarm_test
