// No request lost: a swarm with redundant coverage (a head and two pipelines of two pinned
// stages: five processes) serves eight concurrent streaming clients; one worker is killed with
// SIGKILL mid-stream, another is stopped (SIGSTOP) — every request completes and each output
// equals the fault-free one, token for token. Without a cover a request gets 503 after the
// wait; when the scheduler dies another node takes over and keeps assigning layers.
#include "integration/swarm_harness.h"

namespace px::swarm_test {
namespace {

struct TwoPipelines {
  Head head{{"--no-worker"}};
  std::vector<std::unique_ptr<ChildProcess>> workers;  // [0:4] [4:8] [0:4] [4:8]
  TwoPipelines() {
    for (const char* range : {"0:4", "4:8", "0:4", "4:8"}) {
      workers.push_back(worker(head.p2p, {"serve", "--layers", range}));
    }
  }
};

void run_with_fault(const std::function<void(TwoPipelines&)>& fault, const std::string& what) {
  constexpr int kTokens = 96;
  single_node_reference(kTokens);
  TwoPipelines swarm;
  ASSERT_FALSE(swarm.head.api.empty()) << swarm.head.process->output();
  ASSERT_TRUE(wait_for_cluster(swarm.head.api, 2, 4, 30s)) << cluster(swarm.head.api).dump(1);
  std::vector<std::future<Streamed>> running;
  for (int i = 0; i < 8; ++i) {
    running.push_back(std::async(std::launch::async, [&, i] { return stream(swarm.head.api, i, kTokens); }));
  }
  std::this_thread::sleep_for(150ms);  // the streams are under way
  fault(swarm);
  expect_streams_match_reference(running, kTokens, what);
}

TEST(SwarmFaults, AWorkerKilledMidStreamLosesNoRequest) {
  run_with_fault([](TwoPipelines& s) { s.workers[1]->signal(SIGKILL); }, "after SIGKILL");
}

TEST(SwarmFaults, AStalledWorkerLosesNoRequest) {
  run_with_fault(
      [](TwoPipelines& s) {
        s.workers[3]->signal(SIGSTOP);
        std::this_thread::sleep_for(2s);  // well past the heartbeat deadline
        s.workers[3]->signal(SIGCONT);
      },
      "after SIGSTOP");
}

TEST(SwarmFaults, WithoutCoverRequestsFailClearlyAfterTheWait) {
  Head head({"--no-worker", "--route-wait", "1"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto half = worker(head.p2p, {"serve", "--layers", "0:4"});  // nobody holds [4, 8)
  const auto start = std::chrono::steady_clock::now();
  const Completion c = complete(head.api, 0);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(c.status, 503) << c.body;
  EXPECT_NE(c.body.find("covers all 8 layers"), std::string::npos) << c.body;
  EXPECT_GE(waited, 0.9);
  EXPECT_LT(waited, 10);
}

}  // namespace
}  // namespace px::swarm_test

namespace px::swarm_test {
namespace {

TEST(SwarmFaults, AnotherNodeTakesOverSchedulingWhenTheSchedulerDies) {
  single_node_reference();
  Head scheduler({"--no-worker"});  // the `run` node: scheduler (and an API nobody uses here)
  ASSERT_FALSE(scheduler.p2p.empty()) << scheduler.process->output();
  // Two workers that each hold half the model, one of them serving the API as well.
  auto first = worker(scheduler.p2p, {"join", "--max-layers", "4", "--port", "0"});
  const std::string api = first->wait_for(R"(api=(\S+))", 5s);
  auto second = worker(scheduler.p2p, {"join", "--max-layers", "4"});
  ASSERT_TRUE(wait_for_cluster(api, 1, 2, 30s)) << cluster(api).dump(1);

  scheduler.process->signal(SIGKILL);
  // The pipeline keeps serving, and one of the survivors now schedules.
  expect_same(complete_concurrently(api, 8), "without the scheduler");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  bool taken_over = false;
  while (!taken_over && std::chrono::steady_clock::now() < deadline) {
    const json c = cluster(api);
    for (const auto& n : c.value("nodes", json::array())) taken_over |= n.value("scheduler", false);
    if (!taken_over) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(taken_over) << cluster(api).dump(1);
  // It assigns layers: a third worker is given some; when the second one goes, whatever is
  // lost is reassigned (healing) and the requests wait for it, with unchanged output.
  auto third = worker(first->wait_for(R"(p2p=(\S+))", 1s), {"join", "--max-layers", "4"});
  ASSERT_TRUE(wait_for_cluster(api, 1, 3, 45s)) << cluster(api).dump(1);
  second->signal(SIGKILL);
  expect_same(complete_concurrently(api, 8), "after the takeover and a failure");
}

}  // namespace
}  // namespace px::swarm_test
