// The swarm as separate processes on 127.0.0.1: a head (`run --no-worker`) and 1-4 workers
// pinned to contiguous layer ranges give the single node's completions token for token (texts
// and logprobs), eight requests at once; a node that joins mid-run is given layers and takes
// traffic; a node that leaves with SIGTERM is drained first and no request is lost; a node
// whose model differs in one weight is refused, naming the layer.
#include <filesystem>
#include <fstream>

#include "integration/swarm_harness.h"
#include "model/gguf.h"

namespace px::swarm_test {
namespace {

TEST(Swarm, OneToFourStagesGiveTheSingleNodesTokens) {
  single_node_reference();
  const std::vector<std::vector<std::string>> cuts = {{"0:8"}, {"0:4", "4:8"}, {"0:3", "3:5", "5:8"}, {"0:2", "2:4", "4:6", "6:8"}};
  for (const auto& ranges : cuts) {
    Head head({"--no-worker"});
    ASSERT_FALSE(head.api.empty()) << head.process->output();
    std::vector<std::unique_ptr<ChildProcess>> workers;
    for (const std::string& r : ranges) workers.push_back(worker(head.p2p, {"serve", "--layers", r}));
    ASSERT_TRUE(wait_for_cluster(head.api, 1, ranges.size(), 30s)) << cluster(head.api).dump(1);
    const std::string what = std::to_string(ranges.size()) + " stages";
    expect_same(complete_concurrently(head.api, 8), what);
    // Every request took the one pipeline: its stages in layer order.
    const json c = cluster(head.api);
    ASSERT_FALSE(c["routes"].empty());
    EXPECT_EQ(c["routes"].back()["nodes"].size(), ranges.size());
  }
}

TEST(Swarm, ANodeThatJoinsIsGivenLayersAndTakesTraffic) {
  single_node_reference();
  // Scheduler + API + a worker: one pipeline of its own. Its own stage costs the head no network
  // at all, so the router only sends work elsewhere once that stage is busy: 4 sequences at
  // once make 8 concurrent requests overflow (without it the choice came down to loopback RTT
  // noise, and in one CI run every request stayed home).
  Head head({"--max-running", "4"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 1, 30s)) << cluster(head.api).dump(1);
  expect_same(complete_concurrently(head.api, 8), "one node");

  auto joined = worker(head.p2p, {"join"});
  const std::string joined_id = node_id_of(*joined);
  ASSERT_TRUE(wait_for_cluster(head.api, 2, 2, 30s)) << cluster(head.api).dump(1);
  // Traffic moves to it as the router's estimates settle (its heartbeat RTT, its measured speed,
  // the head's own load): a few rounds at most.
  bool used = false;
  for (int round = 0; round < 5 && !used; ++round) {
    expect_same(complete_concurrently(head.api, 8), "after a join");
    const json after = cluster(head.api);
    for (const auto& route : after["routes"]) {
      for (const auto& id : route["nodes"]) used |= id.get<std::string>() == joined_id;
    }
  }
  EXPECT_TRUE(used) << "no request went through the joined node " << joined_id << ": " << cluster(head.api).dump(1);
}

TEST(Swarm, ANodeThatLeavesIsDrainedFirst) {
  single_node_reference();
  single_node_reference(48);
  Head head({"--no-worker"});
  ASSERT_FALSE(head.api.empty()) << head.process->output();
  auto first = worker(head.p2p, {"serve", "--layers", "0:4"});
  auto second = worker(head.p2p, {"serve", "--layers", "4:8"});
  auto spare = worker(head.p2p, {"serve", "--layers", "4:8"});
  ASSERT_TRUE(wait_for_cluster(head.api, 1, 3, 30s)) << cluster(head.api).dump(1);
  // Long requests in flight while one of the two [4, 8) stages is told to leave.
  auto running = std::async(std::launch::async, [&] { return complete_concurrently(head.api, 8, 48); });
  std::this_thread::sleep_for(300ms);
  second->signal(SIGTERM);
  expect_same(running.get(), "while a stage drains", 48);
  EXPECT_EQ(second->wait(30s), 0) << second->output();
  // The rest keep serving, with the same output as the single node.
  expect_same(complete_concurrently(head.api, 8), "after a leave");
}

TEST(Swarm, ANodeWhoseModelDiffersInOneWeightIsRefusedNamingTheLayer) {
  // The swarm's model with one bit of layer 5 flipped: the same shape, another model.
  const std::string other = test::temp_dir() + "swarm_model_tampered.gguf";
  std::filesystem::copy_file(model_path(), other, std::filesystem::copy_options::overwrite_existing);
  uint64_t offset = 0;
  {
    const auto file = GgufFile::open(other);
    const GgufTensorInfo* t = file->find_tensor("blk.5.ffn_down.weight");
    ASSERT_NE(t, nullptr);
    offset = file->data_offset() + t->offset + 7;
  }
  {
    std::fstream f(other, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(offset));
    char c = 0;
    f.read(&c, 1);
    f.seekp(std::streamoff(offset));
    f.put(char(c ^ 1));
  }
  Head head({"--no-worker"});
  ASSERT_FALSE(head.p2p.empty()) << head.process->output();
  ChildProcess joiner({"join", "-m", other, "--peer", head.p2p, "--p2p-port", "0", "-t", "1"});
  EXPECT_NE(joiner.wait(30s), 0) << joiner.output();
  EXPECT_NE(joiner.output().find("refused this node: layer 5 differs from the swarm's model (this swarm serves model"),
            std::string::npos)
      << joiner.output();
}

}  // namespace
}  // namespace px::swarm_test
