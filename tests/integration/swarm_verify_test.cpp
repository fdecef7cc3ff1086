// An open swarm of `parallax` processes whose head verifies results (swarm/result_verifier.h):
// a worker playing the attacker (--fault corrupt, skip-layer, wrong-model, or sending no
// commitments; wrong-model on the last stage too) is caught and banned within 50 requests at
// --verify-rate 0.2, and afterwards the
// swarm serves the single node's tokens; honest workers with mixed thread counts and wire dtypes
// are never banned over 1,000 requests, every one of them replayed. With --verify full no wrong
// token reaches a client even while the attacker is in the swarm.
#include <set>

#include "integration/swarm_harness.h"

namespace px::swarm_test {
namespace {

// The swarm's model with other weights (another seed): what a wrong-model worker computes with.
std::string other_model_path() {
  static const std::string path = write_swarm_model("swarm_model_other.gguf", SynthSpec{}.seed + 1);
  return path;
}

// A worker of an open swarm holding `range`.
std::unique_ptr<ChildProcess> open_worker(const std::string& peer, const std::string& range, int threads,
                                          const std::string& wire, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"serve", "-m", model_path(), "--peer", peer, "--layers", range,
                                   "-t", std::to_string(threads), "--wire-dtype", wire,
                                   "--p2p-port", "0", "--heartbeat-ms", "200", "--expire-ms", "2000"};
  args.push_back("--open");
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = std::make_unique<ChildProcess>(args);
  EXPECT_FALSE(p->wait_for(R"((ready node=.*))", 60s).empty()) << p->output();
  return p;
}

std::set<std::string> banned_ids(const json& c) {
  std::set<std::string> ids;
  for (const auto& b : c.value("banned", json::array())) ids.insert(b.value("id", ""));
  return ids;
}

// Waits until the head has replayed everything it sampled (or `timeout` passes).
json settled_verification(const std::string& api, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json v;
  while (std::chrono::steady_clock::now() < deadline) {
    v = cluster(api).value("verification", json::object());
    if (v.value("in_flight", 1) == 0 && v.value("queued", 1) == 0) break;
    std::this_thread::sleep_for(200ms);
  }
  return v;
}

// Sends `n` completions from 8 clients at once; how many did not answer 200.
int failed_requests(const std::string& api, int n, int max_tokens) {
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int i; (i = next++) < n;) failed += complete(api, i, max_tokens).status != 200;
    });
  }
  for (auto& t : clients) t.join();
  return failed.load();
}

struct Attack {
  const char* name;
  std::vector<std::string> args;
  // Computes wrong results: caught on its own requests and on the replays it runs. One that only
  // withholds commitments is caught on its own requests alone, which the router may send
  // elsewhere: it then holds its layers alone until it is banned.
  bool computes_wrong = true;
  // The attacker holds the last stage (4:8), which sends tokens, not hidden states: the head
  // checks its tokens from the replay's rows at its input, on its own requests only (a replay's
  // tokens are not looked at), so it too holds its layers alone until it is banned.
  bool last_stage = false;
};

class OpenSwarmAttack : public testing::TestWithParam<Attack> {};

TEST_P(OpenSwarmAttack, TheAttackerIsBannedWithinFiftyRequests) {
  single_node_reference();
  const Attack& attack = GetParam();
  std::vector<std::string> fault = attack.args;
  for (std::string& a : fault) {
    if (a == "OTHER_MODEL") a = other_model_path();
  }
  Head head({"--open", "--no-worker", "--verify-rate", "0.2"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  // workers[0] is the attacker's replica (started again after the ban), workers[2] the attacker.
  const std::string attacked = attack.last_stage ? "4:8" : "0:4", other = attack.last_stage ? "0:4" : "4:8";
  const bool alone = !attack.computes_wrong || attack.last_stage;
  std::vector<std::unique_ptr<ChildProcess>> workers(4);
  if (!alone) workers[0] = open_worker(head.p2p, attacked, 1, "f32");
  workers[1] = open_worker(head.p2p, other, 1, "f32");
  workers[2] = open_worker(head.p2p, attacked, 1, "f32", fault);
  workers[3] = open_worker(head.p2p, other, 1, "f32");
  ASSERT_TRUE(wait_for_cluster(head.api, alone ? 1 : 2, alone ? 3 : 4, 30s))
      << cluster(head.api).dump(1);
  const std::string attacker = node_id_of(*workers[2]);
  if (!fault.empty()) {
    EXPECT_NE(workers[2]->output().find("TEST AID"), std::string::npos) << workers[2]->output();
  }

  int sent = 0;
  bool caught = false;
  while (sent < 50 && !caught) {
    std::vector<std::future<Completion>> batch;
    for (int i = 0; i < 5; ++i, ++sent) batch.push_back(std::async(std::launch::async, [&, sent] { return complete(head.api, sent, 8); }));
    for (auto& f : batch) EXPECT_EQ(f.get().status, 200);  // a wrong answer, not a failed one
    caught = banned_ids(cluster(head.api)).count(attacker) > 0;
  }
  // Verifications of the last requests may still be running.
  const json verification = settled_verification(head.api, 20s);
  const json c = cluster(head.api);
  EXPECT_EQ(banned_ids(c), std::set<std::string>{attacker}) << "after " << sent << " requests: " << c.dump(1);
  std::cerr << "banned after " << sent << " requests; verification: " << verification.dump() << "\n";
  if (attack.last_stage) {
    EXPECT_GE(verification["last_stage"].value("tokens", 0), 1) << verification.dump(1);
  } else {
    EXPECT_GE(verification.value(attack.computes_wrong ? "disputes" : "missing_commitments", 0), 1) << verification.dump(1);
  }
  for (const auto& node : c["nodes"]) EXPECT_NE(node["id"], attacker);
  EXPECT_NE(head.process->output().find("banning node " + attacker), std::string::npos);
  ChildProcess status({"status", "--peer", head.p2p});
  EXPECT_EQ(status.wait(20s), 0) << status.output();
  EXPECT_NE(status.output().find("banned " + attacker), std::string::npos) << status.output();
  EXPECT_NE(status.output().find("verification at rate 0.2: "), std::string::npos) << status.output();

  // Without it, the swarm answers as the single node does.
  if (!workers[0]) {
    workers[0] = open_worker(head.p2p, attacked, 1, "f32");
    ASSERT_TRUE(wait_for_cluster(head.api, 1, 3, 30s)) << cluster(head.api).dump(1);
  }
  expect_same(complete_concurrently(head.api, 8), "after the ban");
}

INSTANTIATE_TEST_SUITE_P(Faults, OpenSwarmAttack,
                         testing::Values(Attack{"corrupt", {"--fault", "corrupt"}},
                                         Attack{"skip_layer", {"--fault", "skip-layer"}},
                                         Attack{"wrong_model", {"--fault", "wrong-model", "--fault-model", "OTHER_MODEL"}},
                                         Attack{"no_commitments", {"--fault", "no-commit"}, /*computes_wrong=*/false},
                                         Attack{"wrong_model_last_stage", {"--fault", "wrong-model", "--fault-model", "OTHER_MODEL"},
                                                true, /*last_stage=*/true}),
                         [](const testing::TestParamInfo<Attack>& info) { return std::string(info.param.name); });

TEST(OpenSwarm, HonestWorkersAreNeverBannedOverAThousandReplayedRequests) {
  // Two 3-stage pipelines: boundaries after layers 3 and 6, every stage on another thread count
  // or wire dtype (f32, f16, q8) than its replica, so each replay crosses both.
  Head head({"--open", "--no-worker", "--verify-rate", "1"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  std::vector<std::unique_ptr<ChildProcess>> workers;
  workers.push_back(open_worker(head.p2p, "0:3", 1, "f16"));
  workers.push_back(open_worker(head.p2p, "3:6", 2, "q8"));
  workers.push_back(open_worker(head.p2p, "6:8", 1, "f32"));
  workers.push_back(open_worker(head.p2p, "0:3", 2, "f32"));
  workers.push_back(open_worker(head.p2p, "3:6", 1, "f16"));
  workers.push_back(open_worker(head.p2p, "6:8", 2, "f32"));
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 6, 30s)) << cluster(head.api).dump(1);

  constexpr int kRequests = 1000;
  EXPECT_EQ(failed_requests(head.api, kRequests, 4), 0);
  const json verification = settled_verification(head.api, 60s);
  std::cerr << "verification: " << verification.dump() << "\n";
  EXPECT_TRUE(banned_ids(cluster(head.api)).empty()) << cluster(head.api).dump(1);
  EXPECT_EQ(verification.value("completed", 0), kRequests);
  // Replays queue behind requests; most run (the rest are counted as skipped, never as passed).
  EXPECT_GE(verification.value("passed", 0), kRequests / 2) << verification.dump(1);
  EXPECT_EQ(verification.value("missing_commitments", -1), 0) << verification.dump(1);
  EXPECT_EQ(verification["bans"].size(), 0u);
}

TEST(OpenSwarm, VerifyFullLetsNoWrongOutputThroughWhileAnAttackerServes) {
  single_node_reference();
  Head head({"--open", "--no-worker", "--verify", "full", "--verify-rate", "0"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  // Three replicas of the attacked stage, so that two pipelines with no node in common remain
  // after the ban; mixed thread counts.
  std::vector<std::unique_ptr<ChildProcess>> workers;
  workers.push_back(open_worker(head.p2p, "0:4", 1, "f32", {"--fault", "corrupt", "--fault-scale", "1"}));
  workers.push_back(open_worker(head.p2p, "0:4", 2, "f32"));
  workers.push_back(open_worker(head.p2p, "0:4", 1, "f32"));
  workers.push_back(open_worker(head.p2p, "4:8", 2, "f32"));
  workers.push_back(open_worker(head.p2p, "4:8", 1, "f32"));
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 5, 30s)) << cluster(head.api).dump(1);
  const std::string attacker = node_id_of(*workers[0]);

  // Every answer is the single node's, before, during and after the attacker's ban.
  for (int round = 0; round < 5; ++round) expect_same(complete_concurrently(head.api, 8), "round " + std::to_string(round));
  const json c = cluster(head.api);
  const json& v = c["verification"];
  std::cerr << "verification: " << v.dump() << "\n";
  EXPECT_EQ(v.value("mode", ""), "full");
  EXPECT_GE(v.value("token_disputes", 0), 1) << v.dump(1);
  EXPECT_EQ(banned_ids(c), std::set<std::string>{attacker}) << c.dump(1);
  ChildProcess status({"status", "--peer", head.p2p});
  EXPECT_EQ(status.wait(20s), 0) << status.output();
  EXPECT_NE(status.output().find("verification full: "), std::string::npos) << status.output();
}

TEST(OpenSwarm, VerifyFullBansNoHonestWorkerOverAThousandRequests) {
  // Two 2-stage pipelines, one of them on an f16 wire and other thread counts: the pairs' tokens
  // differ now and then by the wire's rounding, which the head must find honest.
  Head head({"--open", "--no-worker", "--verify", "full", "--verify-rate", "0.1"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  std::vector<std::unique_ptr<ChildProcess>> workers;
  workers.push_back(open_worker(head.p2p, "0:5", 1, "f32"));
  workers.push_back(open_worker(head.p2p, "5:8", 2, "f32"));
  workers.push_back(open_worker(head.p2p, "0:5", 2, "f16"));
  workers.push_back(open_worker(head.p2p, "5:8", 1, "f32"));
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 4, 30s)) << cluster(head.api).dump(1);
  constexpr int kRequests = 1000;
  EXPECT_EQ(failed_requests(head.api, kRequests, 8), 0);
  const json verification = settled_verification(head.api, 60s);
  std::cerr << "verification: " << verification.dump() << "\n";
  EXPECT_TRUE(banned_ids(cluster(head.api)).empty()) << cluster(head.api).dump(1);
  EXPECT_EQ(verification.value("completed", 0), 2 * kRequests);  // each on two routes
  EXPECT_EQ(verification["bans"].size(), 0u);
}

TEST(OpenSwarm, VerifyFullIsRefusedOutsideOpenSwarms) {
  ChildProcess run({"run", "-m", model_path(), "--port", "0", "--p2p-port", "0", "--verify", "full"});
  EXPECT_NE(run.wait(20s), 0);
  EXPECT_NE(run.output().find("--verify full is for open swarms"), std::string::npos) << run.output();
}

}  // namespace
}  // namespace px::swarm_test
