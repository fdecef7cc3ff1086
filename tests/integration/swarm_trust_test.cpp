// A private swarm of `parallax` processes (mutual TLS, signed announcements): nodes without a
// valid credential are refused while the swarm keeps serving the single node's tokens, and a
// serving node revoked under load fails no request.
#include <filesystem>

#include "integration/swarm_harness.h"
#include "swarm/credential_authority.h"

namespace px::swarm_test {
namespace {

constexpr int kTokens = 256;  // long enough that the revocation (a process start, a signed list) lands mid-stream

struct Credentials {
  std::string base;
  std::string root;

  Credentials() {
    static int n = 0;
    base = test::temp_dir() + "trust-" + std::to_string(n++) + "/";
    std::filesystem::remove_all(base);
    root = base + "root";
    swarm::create_swarm_root(root, "test");
  }
  std::string invite(const std::string& name) {
    swarm::issue_node_credential(root, base + name, name, 30);
    return base + name;
  }
};

std::vector<std::string> with(std::vector<std::string> args, const std::string& credentials) {
  args.insert(args.end(), {"--credentials", credentials});
  return args;
}

// A node that must not get in: it exits with an error, and says why.
std::string refused_join(const std::string& peer, std::vector<std::string> extra) {
  std::vector<std::string> args = {"join", "-m", model_path(), "--peer", peer, "-t", "1", "--p2p-port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  ChildProcess node(args);
  const int code = node.wait(40s);
  EXPECT_NE(code, 0) << node.output();
  return node.output();
}

TEST(PrivateSwarm, NodesWithoutAValidCredentialAreRefusedWhileTheSwarmServes) {
  single_node_reference();
  Credentials swarm, other;
  const std::string revoked = swarm.invite("revoked");
  swarm::revoke_credential(swarm.root, "revoked");
  // Invited after the revocation: their directories carry the list.
  const std::string head_dir = swarm.invite("head"), w1 = swarm.invite("w1"), w2 = swarm.invite("w2");
  const std::string evil = other.invite("evil");

  Head head(with({"--no-worker"}, head_dir));
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto a = worker(head.p2p, with({"serve", "--layers", "0:4"}, w1));
  auto b = worker(head.p2p, with({"serve", "--layers", "4:8"}, w2));
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 2, 30s)) << cluster(head.api).dump(1);

  const std::string none = refused_join(head.p2p, {});
  EXPECT_NE(none.find("give this node --credentials"), std::string::npos) << none;
  const std::string foreign = refused_join(head.p2p, {"--credentials", evil});
  EXPECT_NE(foreign.find("issued by another swarm's root"), std::string::npos) << foreign;
  const std::string gone = refused_join(head.p2p, {"--credentials", revoked});
  EXPECT_NE(gone.find("may have refused this node's credential 'revoked'"), std::string::npos) << gone;
  // The swarm side warns, naming the reason.
  const std::string head_log = head.process->output();
  EXPECT_NE(head_log.find("credential 'revoked' (serial"), std::string::npos);
  EXPECT_NE(head_log.find("has been revoked"), std::string::npos);
  EXPECT_NE(head_log.find("credential 'evil' is issued by another swarm's root"), std::string::npos);

  EXPECT_EQ(cluster(head.api)["nodes"].size(), 3u) << cluster(head.api).dump(1);
  expect_same(complete_concurrently(head.api, 8), "private swarm after refusals");
}

TEST(PrivateSwarm, RevokingAServingNodeUnderLoadFailsNoRequest) {
  single_node_reference(kTokens);
  Credentials swarm;
  Head head(with({"--no-worker"}, swarm.invite("head")));
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  std::vector<std::unique_ptr<ChildProcess>> workers;
  int i = 0;
  for (const char* range : {"0:4", "4:8", "0:4", "4:8"}) {
    workers.push_back(worker(head.p2p, with({"serve", "--layers", range}, swarm.invite("w" + std::to_string(i++)))));
  }
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 4, 30s)) << cluster(head.api).dump(1);
  const std::string victim_id = node_id_of(*workers[1]);

  std::vector<std::future<Streamed>> running;
  for (int r = 0; r < 8; ++r) running.push_back(std::async(std::launch::async, [&, r] { return stream(head.api, r, kTokens); }));
  std::this_thread::sleep_for(100ms);
  ChildProcess revoke({"swarm", "revoke", swarm.root, "w1", "--peer", head.p2p});
  EXPECT_EQ(revoke.wait(20s), 0) << revoke.output();
  size_t unfinished = 0;
  for (auto& f : running) unfinished += f.wait_for(0s) != std::future_status::ready;
  EXPECT_GT(unfinished, 0u) << "the streams ended before the revocation: it tested nothing";
  // The head holds the list now: it took it from this call ("adopted it"), or, seen once on a
  // loaded machine and not understood yet, had it already when the call arrived.
  EXPECT_TRUE(revoke.output().find("adopted it") != std::string::npos ||
              revoke.output().find("had it already") != std::string::npos)
      << revoke.output();
  expect_streams_match_reference(running, kTokens, "a serving node revoked");

  // Within seconds the head has dropped it for good and shows why.
  bool banned = false;
  for (int t = 0; t < 50 && !banned; ++t) {
    for (const auto& b : cluster(head.api).value("banned", json::array())) banned |= b["id"] == victim_id;
    if (!banned) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(banned) << cluster(head.api).dump(1);
  const json view = cluster(head.api);  // named: a loop over a temporary's member dangles
  for (const auto& node : view["nodes"]) EXPECT_NE(node["id"], victim_id);
  // The other workers learnt it from the head, not from the operator.
  std::this_thread::sleep_for(1s);
  for (size_t w : {0u, 2u, 3u}) {
    EXPECT_NE(workers[w]->output().find("adopted revocation list 1"), std::string::npos) << workers[w]->output();
  }
  expect_same(complete_concurrently(head.api, 8), "after the revocation");
}

}  // namespace
}  // namespace px::swarm_test
