// Discovery's bookkeeping with time passed in: which announcement wins, when a node counts as
// gone, and when a change is reported.
#include "swarm/live_nodes.h"

#include <gtest/gtest.h>

namespace px::swarm {
namespace {

using namespace std::chrono_literals;
using Update = LiveNodeTable::Update;

const LiveNodeTable::Clock::time_point t0{};

NodeAnnouncement node(const std::string& id, uint64_t sequence, const std::string& state = "ready") {
  NodeAnnouncement a;
  a.node_id = id;
  a.sequence = sequence;
  a.state = state;
  return a;
}

std::vector<std::string> ids(const std::vector<NodeAnnouncement>& nodes) {
  std::vector<std::string> out;
  for (const auto& n : nodes) out.push_back(n.node_id);
  return out;
}

TEST(DiscoveryLiveNodes, NewestSequenceWinsAndLateCopiesAreIgnored) {
  LiveNodeTable table(5s);
  EXPECT_EQ(table.update(node("b", 1), t0), Update::Changed);
  EXPECT_EQ(table.update(node("a", 7), t0), Update::Changed);
  EXPECT_EQ(ids(table.live(t0)), (std::vector<std::string>{"a", "b"}));

  NodeAnnouncement moved = node("a", 8);
  moved.layer_end = 16;
  EXPECT_EQ(table.update(moved, t0 + 1s), Update::Changed);
  EXPECT_EQ(table.update(node("a", 8), t0 + 1s), Update::Ignored);  // the same one via another path
  EXPECT_EQ(table.update(node("a", 6), t0 + 2s), Update::Ignored);  // late and older
  EXPECT_EQ(table.live(t0 + 2s)[0].layer_end, 16);

  // A newer sequence with the same content refreshes the node but is no change.
  NodeAnnouncement again = moved;
  again.sequence = 9;
  EXPECT_EQ(table.update(again, t0 + 3s), Update::Unchanged);
}

TEST(DiscoveryLiveNodes, SilentNodesExpireAfterTheirLastNewAnnouncement) {
  LiveNodeTable table(5s);
  table.update(node("a", 1), t0);
  table.update(node("b", 1), t0);
  table.update(node("a", 2), t0 + 3s);
  table.update(node("b", 1), t0 + 4s);  // a stale copy does not count as hearing b
  EXPECT_EQ(ids(table.live(t0 + 4999ms)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids(table.live(t0 + 5s)), (std::vector<std::string>{"a"}));  // before any expire()
  EXPECT_EQ(table.next_expiry(), t0 + 5s);
  EXPECT_TRUE(table.expire(t0 + 5s));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.next_expiry(), t0 + 8s);
  EXPECT_FALSE(table.expire(t0 + 7s));
  EXPECT_TRUE(table.expire(t0 + 8s));
  EXPECT_TRUE(table.live(t0 + 8s).empty());
  EXPECT_EQ(table.next_expiry(), std::nullopt);

  // Once forgotten, a node may come back with any sequence (e.g. restarted with the same id).
  EXPECT_EQ(table.update(node("a", 1), t0 + 9s), Update::Changed);
}

TEST(DiscoveryLiveNodes, LeavingRemovesANodeAtOnceAndOlderAnnouncementsCannotReviveIt) {
  LiveNodeTable table(5s);
  table.update(node("a", 1), t0);
  EXPECT_EQ(table.update(node("a", 2, "leaving"), t0 + 1s), Update::Changed);
  EXPECT_TRUE(table.live(t0 + 1s).empty());
  EXPECT_EQ(table.update(node("a", 1), t0 + 2s), Update::Ignored);
  EXPECT_TRUE(table.live(t0 + 2s).empty());
  EXPECT_FALSE(table.expire(t0 + 6s));  // forgetting a node that left is no change
  EXPECT_EQ(table.size(), 0u);

  // Announcing again after leaving (a newer sequence) brings it back.
  table.update(node("b", 1, "leaving"), t0);
  EXPECT_EQ(table.update(node("b", 2, "joining"), t0 + 1s), Update::Changed);
  EXPECT_EQ(ids(table.live(t0 + 1s)), (std::vector<std::string>{"b"}));
  // A node first heard leaving is not news.
  EXPECT_EQ(table.update(node("c", 1, "leaving"), t0), Update::Unchanged);
}

TEST(DiscoveryLiveNodes, AnExpiredButUnsweptNodeHeardAgainIsAChange) {
  LiveNodeTable table(5s);
  table.update(node("a", 1), t0);
  EXPECT_EQ(table.update(node("a", 2), t0 + 6s), Update::Changed);
  EXPECT_EQ(ids(table.live(t0 + 6s)), (std::vector<std::string>{"a"}));
}

TEST(DiscoveryLiveNodes, ABoundedNumberOfNodesIsTracked) {
  LiveNodeTable table(5s, 2);
  table.update(node("a", 1), t0);
  table.update(node("b", 1), t0);
  EXPECT_EQ(table.update(node("c", 1), t0), Update::Full);
  EXPECT_EQ(table.update(node("a", 2, "loading"), t0), Update::Changed);  // known nodes still update
  table.expire(t0 + 5s);
  EXPECT_EQ(table.update(node("c", 1), t0 + 5s), Update::Changed);
}

}  // namespace
}  // namespace px::swarm
