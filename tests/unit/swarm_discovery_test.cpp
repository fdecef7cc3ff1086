// Discovery over a real OpenDHT network on 127.0.0.1 (ephemeral UDP ports): nodes find each
// other through one bootstrap peer, updates spread, silent and withdrawn nodes disappear, and
// values that are not valid announcements are ignored. Every wait polls against a deadline
// generous enough for a loaded two-core machine; the DHT itself answers in milliseconds.
#include "swarm/discovery.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <opendht/dhtrunner.h>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "swarm/announcement_json.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kPeriod = 200ms;
constexpr auto kExpire = 1500ms;
constexpr auto kConverge = 10s;     // deadline for news to spread
constexpr auto kExpirySlack = 2500ms;

DiscoveryConfig config(const std::string& key, std::vector<std::string> bootstrap = {},
                       std::chrono::milliseconds expire_after = kExpire) {
  DiscoveryConfig c;
  c.bind_host = "127.0.0.1";
  c.swarm_key = key;
  c.bootstrap = std::move(bootstrap);
  c.announce_period = kPeriod;
  c.expire_after = expire_after;
  return c;
}

std::string node_id(int i) { return fmt::format("{:016x}", 0xa0 + i); }

NodeAnnouncement announcement(int i) {
  NodeAnnouncement a;
  a.node_id = node_id(i);
  a.address = fmt::format("127.0.0.1:{}", 7000 + i);
  a.model_id = "test-model";
  a.n_layers = 32;
  a.state = "joining";
  a.free_memory = 1e9 * (i + 1);
  return a;
}

std::set<std::string> live_ids(const Discovery& d) {
  std::set<std::string> ids;
  for (const auto& n : d.live_nodes()) ids.insert(n.node_id);
  return ids;
}

// Polls `done` until it holds or `deadline` passes; returns how long it took, or nullopt.
template <typename Done>
std::optional<Clock::duration> eventually(Done done, Clock::duration deadline) {
  const auto start = Clock::now();
  while (!done()) {
    if (Clock::now() - start > deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return Clock::now() - start;
}

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// n nodes; the first is the bootstrap peer of the others. Each has announced itself.
struct Swarm {
  Swarm(const std::string& key, int n, std::chrono::milliseconds expire_after = kExpire) {
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> bootstrap;
      if (i > 0) bootstrap.push_back(fmt::format("127.0.0.1:{}", nodes[0]->port()));
      nodes.push_back(std::make_unique<Discovery>(config(key, bootstrap, expire_after)));
      changes.push_back(std::make_unique<Changes>());
      // The callback may read the swarm back.
      nodes[i]->on_change([changes = changes[i].get(), node = nodes[i].get()] {
        ++changes->calls;
        changes->live_seen = int(node->live_nodes().size());
      });
      nodes[i]->announce(announcement(i));
    }
  }
  // Whether every node still running sees exactly `ids`.
  bool all_see(const std::set<std::string>& ids) const {
    for (const auto& d : nodes)
      if (d && live_ids(*d) != ids) return false;
    return true;
  }
  struct Changes {
    std::atomic<int> calls = 0;
    std::atomic<int> live_seen = 0;  // live_nodes().size() in the latest call
  };
  std::vector<std::unique_ptr<Changes>> changes;  // before nodes: their callbacks use it until destroyed
  std::vector<std::unique_ptr<Discovery>> nodes;
};

const std::set<std::string> kThree = {node_id(0), node_id(1), node_id(2)};

TEST(Discovery, ThreeNodesFindEachOtherThroughOneBootstrapPeer) {
  Swarm swarm("parallax/test-three", 3);
  const auto took = eventually([&] { return swarm.all_see(kThree); }, kConverge);
  ASSERT_TRUE(took) << "node 0 sees " << live_ids(*swarm.nodes[0]).size() << ", node 2 sees "
                    << live_ids(*swarm.nodes[2]).size();
  std::cout << "[ measured ] 3 nodes converged in " << ms(*took) << " ms\n";

  for (const auto& d : swarm.nodes) {
    const auto nodes = d->live_nodes();
    ASSERT_EQ(nodes.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(nodes[i].address, announcement(i).address);
      EXPECT_EQ(nodes[i].free_memory, announcement(i).free_memory);
      EXPECT_EQ(nodes[i].state, "joining");
      EXPECT_GE(nodes[i].sequence, 1u);
    }
  }
  for (const auto& changes : swarm.changes)
    EXPECT_TRUE(eventually([&] { return changes->live_seen == 3; }, kConverge)) << changes->calls << " calls";
}

TEST(Discovery, UpdatedAnnouncementsSpread) {
  Swarm swarm("parallax/test-update", 3);
  ASSERT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kConverge));
  const int changes_before = swarm.changes[0]->calls;

  NodeAnnouncement updated = announcement(2);
  updated.state = "ready";
  updated.layer_begin = 8;
  updated.layer_end = 16;
  swarm.nodes[2]->announce(updated);
  const auto took = eventually(
      [&] {
        for (const auto& d : swarm.nodes) {
          const auto nodes = d->live_nodes();
          if (nodes.size() != 3 || nodes[2].state != "ready" || nodes[2].layer_begin != 8 || nodes[2].layer_end != 16)
            return false;
        }
        return true;
      },
      kConverge);
  ASSERT_TRUE(took);
  std::cout << "[ measured ] an update reached every node in " << ms(*took) << " ms\n";
  EXPECT_TRUE(eventually([&] { return swarm.changes[0]->calls > changes_before; }, kConverge));
}

TEST(Discovery, ANodeThatVanishesExpiresWithinExpireAfter) {
  Swarm swarm("parallax/test-expire", 3);
  ASSERT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kConverge));

  const int changes_before = swarm.changes[0]->calls;
  const auto destroy_start = Clock::now();
  swarm.nodes[2].reset();  // no withdraw: as if the process died
  std::cout << "[ measured ] destroying a node took " << ms(Clock::now() - destroy_start) << " ms\n";
  const std::set<std::string> two = {node_id(0), node_id(1)};
  const auto took = eventually([&] { return swarm.all_see(two); }, kExpire + kExpirySlack);
  ASSERT_TRUE(took) << "still seen after " << ms(kExpire + kExpirySlack) << " ms";
  std::cout << "[ measured ] a destroyed node was gone from every peer after " << ms(*took) << " ms (expire_after "
            << ms(kExpire) << " ms)\n";
  EXPECT_GE(*took, kExpire / 2);  // not dropped early: it was heard until it died
  EXPECT_TRUE(eventually([&] { return swarm.changes[0]->live_seen == 2; }, kConverge));
  EXPECT_GT(swarm.changes[0]->calls, changes_before);

  // The survivors keep hearing each other well past expire_after.
  std::this_thread::sleep_for(kExpire + kPeriod);
  EXPECT_TRUE(swarm.all_see(two));
}

TEST(Discovery, WithdrawRemovesANodePromptly) {
  constexpr auto kLongExpire = 8000ms;  // so that only the "leaving" announcement can explain a prompt removal
  Swarm swarm("parallax/test-withdraw", 3, kLongExpire);
  ASSERT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kConverge));

  swarm.nodes[2]->withdraw();
  EXPECT_EQ(live_ids(*swarm.nodes[2]), (std::set<std::string>{node_id(0), node_id(1)}));
  const auto took = eventually([&] { return swarm.all_see({node_id(0), node_id(1)}); }, kLongExpire / 2);
  ASSERT_TRUE(took);
  std::cout << "[ measured ] a withdrawn node was gone from every peer after " << ms(*took) << " ms\n";
  std::this_thread::sleep_for(3 * kPeriod);  // and it stopped re-publishing
  EXPECT_TRUE(swarm.all_see({node_id(0), node_id(1)}));

  swarm.nodes[2]->announce(announcement(2));  // announcing again brings it back
  EXPECT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kConverge));
}

dht::SockAddr loopback_any_port() {
  for (const auto& a : dht::SockAddr::resolve("127.0.0.1", "0"))
    if (a.getFamily() == AF_INET) return a;
  throw Error("no IPv4 loopback");
}

std::shared_ptr<dht::Value> raw_value(uint16_t type, const std::string& bytes,
                                      dht::Value::Id id = dht::Value::INVALID_ID) {
  return std::make_shared<dht::Value>(type, dht::Blob(bytes.begin(), bytes.end()), id);
}

TEST(Discovery, ValuesThatAreNotValidAnnouncementsAreIgnored) {
  const std::string key = "parallax/test-hostile";
  Swarm swarm(key, 3);
  ASSERT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kConverge));

  // A peer that speaks the DHT protocol but not ours, writing straight into the swarm's key.
  dht::DhtRunner hostile;
  dht::DhtRunner::Config hostile_config;
  hostile_config.dht_config.node_config.network = kDiscoveryNetworkId;
  hostile_config.bind4 = loopback_any_port();
  hostile.run(hostile_config, {});
  hostile.bootstrap("127.0.0.1", std::to_string(swarm.nodes[0]->port()));
  const auto hash = dht::InfoHash::get(key);

  std::string bad_load_json = announcement_to_json(announcement(7));
  bad_load_json.replace(bad_load_json.find("\"load\":0.0"), 10, "\"load\":7.0");
  std::string oversized = announcement_to_json(announcement(8));
  oversized.insert(1, "\"padding\":\"" + std::string(2 * kMaxAnnouncementBytes, 'x') + "\",");
  for (const auto& value : {
           raw_value(kAnnouncementValueType, std::string("\xff\x00\x13garbage", 10)),
           raw_value(kAnnouncementValueType, "{\"node_id\": \"00000000000000a9\""),
           raw_value(kAnnouncementValueType, bad_load_json),
           raw_value(kAnnouncementValueType, "{\"node_id\":\"not-hex\"}"),
           raw_value(kAnnouncementValueType, oversized),
           raw_value(0, announcement_to_json(announcement(9))),  // valid JSON, wrong value type
       })
    hostile.put(hash, value);
  // Valid announcements from the same peer, re-published like a node's, prove that its values
  // do reach the swarm.
  NodeAnnouncement control = announcement(5);
  const dht::Value::Id control_value_id = 5;
  auto last_published = Clock::now() - kPeriod;
  std::set<std::string> with_control = kThree;
  with_control.insert(control.node_id);
  EXPECT_TRUE(eventually(
      [&] {
        if (Clock::now() - last_published >= kPeriod) {
          ++control.sequence;
          hostile.put(hash, raw_value(kAnnouncementValueType, announcement_to_json(control), control_value_id));
          last_published = Clock::now();
        }
        return swarm.all_see(with_control);
      },
      kConverge)) << "hostile peer: " << hostile.getNodesStats(AF_INET).toString();
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& d : swarm.nodes)
          if (d->rejected_values() == 0) return false;
        return true;
      },
      kConverge))
      << "rejected: " << swarm.nodes[0]->rejected_values() << " " << swarm.nodes[1]->rejected_values() << " "
      << swarm.nodes[2]->rejected_values();
  for (const auto& d : swarm.nodes) EXPECT_EQ(live_ids(*d), with_control);

  // The swarm still works: the control node, no longer re-published, expires; an update spreads.
  EXPECT_TRUE(eventually([&] { return swarm.all_see(kThree); }, kExpire + kExpirySlack));
  NodeAnnouncement updated = announcement(0);
  updated.state = "loading";
  swarm.nodes[0]->announce(updated);
  EXPECT_TRUE(eventually(
      [&] {
        const auto nodes = swarm.nodes[2]->live_nodes();
        return !nodes.empty() && nodes[0].state == "loading";
      },
      kConverge));
  hostile.join();
}

// Local addresses (as "hex ip") of the sockets in /proc/net/udp or udp6 bound to `port`.
std::vector<std::string> bound_addresses(const char* table, int port) {
  std::vector<std::string> out;
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local;
    fields >> slot >> local;
    const size_t colon = local.rfind(':');
    if (colon != std::string::npos && std::stoi(local.substr(colon + 1), nullptr, 16) == port)
      out.push_back(local.substr(0, colon));
  }
  return out;
}

TEST(Discovery, BindsOnlyTheRequestedIPv4Address) {
  Swarm swarm("parallax/test-bind", 2);
  for (const auto& d : swarm.nodes) {
    ASSERT_GT(d->port(), 0);
    EXPECT_EQ(bound_addresses("/proc/net/udp", d->port()), std::vector<std::string>{"0100007F"});  // 127.0.0.1
    EXPECT_TRUE(bound_addresses("/proc/net/udp6", d->port()).empty());
  }
}

TEST(Discovery, RejectsInvalidConfigurations) {
  EXPECT_THROW(Discovery(config("")), Error);
  DiscoveryConfig c = config("parallax/test-config");
  c.expire_after = c.announce_period;
  EXPECT_THROW(Discovery{c}, Error);
  c = config("parallax/test-config", {"127.0.0.1"});
  EXPECT_THROW(Discovery{c}, Error);
  c = config("parallax/test-config");
  c.bind_host = "::1";
  EXPECT_THROW(Discovery{c}, Error);
  c.bind_host = "127.0.0.1";
  c.port = 70000;
  EXPECT_THROW(Discovery{c}, Error);

  Discovery first(config("parallax/test-config"));
  c.port = first.port();  // taken
  EXPECT_THROW(Discovery{c}, Error);

  NodeAnnouncement invalid = announcement(0);
  invalid.load = 2;
  EXPECT_THROW(first.announce(invalid), Error);
  EXPECT_TRUE(first.live_nodes().empty());
  first.withdraw();  // before any announce: nothing to do
  EXPECT_TRUE(first.live_nodes().empty());
}

}  // namespace
}  // namespace px::swarm
