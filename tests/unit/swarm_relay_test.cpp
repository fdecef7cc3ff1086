// Reaching a node that accepts no connections: peer addresses ("<id>@host:port"), the relay's
// hub (queues, calls, replacement, back-pressure, the shared cap), and the whole path over real
// sockets on 127.0.0.1 — a PeerLink and a PeerClient to "<id>@<relay>" reach the handler of a
// node attached there, and nothing reaches a node that is not. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "unit/dataplane_requests.h"
#include "unit/eventually.h"
#include "unit/recording_handler.h"
#include "swarm/cluster_view.h"
#include "swarm/peer_address.h"
#include "swarm/peer_client.h"
#include "swarm/peer_link.h"
#include "swarm/peer_server.h"
#include "swarm/relay_attachment.h"
#include "swarm/relay_hub.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kAttachedId = "00000000000000b1";

using test::eventually;
using test::kPatience;
using test::RecordingHandler;

TEST(PeerAddress, ParsesDirectAndRelayedAddresses) {
  const PeerAddress direct = parse_peer_address("10.0.0.1:7000");
  EXPECT_EQ(direct.dial, "10.0.0.1:7000");
  EXPECT_TRUE(direct.relay_to.empty());
  const PeerAddress relayed = parse_peer_address(kAttachedId + "@relay.example:7001");
  EXPECT_EQ(relayed.dial, "relay.example:7001");
  EXPECT_EQ(relayed.relay_to, kAttachedId);
  EXPECT_EQ(relayed_address(kAttachedId, "[::1]:7000"), kAttachedId + "@[::1]:7000");
  EXPECT_EQ(relay_target(kAttachedId + "@h:1"), kAttachedId);
  EXPECT_EQ(relay_target("h:1"), "");
  EXPECT_EQ(dial_address(kAttachedId + "@h:1"), "h:1");
  EXPECT_EQ(dial_address("h:1"), "h:1");
  for (const std::string& bad : std::vector<std::string>{"@h:1", "xyz@h:1", "00000000000000B1@h:1", "00000000000000b1@h", kAttachedId + "@",
                                "h", "00000000000000b1@00000000000000b2@h:1"}) {
    EXPECT_THROW(parse_peer_address(bad), Error) << bad;
  }
  NodeAnnouncement n;
  n.address = "h:1";
  EXPECT_EQ(announced_addresses(n), std::vector<std::string>{"h:1"});
  n.addresses = {"a:1", "b:2"};
  EXPECT_EQ(announced_addresses(n), (std::vector<std::string>{"a:1", "b:2"}));
}

TEST(RelayHub, FramesForAnAttachedNodeComeOutInOrderAndNothingForOthers) {
  RelayHub hub;
  v1::PipelineFrame frame;
  EXPECT_FALSE(hub.forward(kAttachedId, frame, false, 0ms)) << "not attached";
  auto session = hub.attach(kAttachedId);
  ASSERT_TRUE(session);
  EXPECT_TRUE(hub.attached(kAttachedId));
  for (uint64_t i = 1; i <= 3; ++i) {
    frame.mutable_release()->set_request(i);
    EXPECT_TRUE(hub.forward(kAttachedId, frame, true, 0ms));
  }
  EXPECT_EQ(hub.shared_frames(), 3u);
  v1::AttachDown down;
  for (uint64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(session->next(down, 1s));
    EXPECT_EQ(down.frame().release().request(), i);
  }
  EXPECT_FALSE(session->next(down, 10ms)) << "nothing more";
  EXPECT_FALSE(hub.forward("00000000000000b2", frame, false, 0ms));
}

TEST(RelayHub, AFullQueueRefusesInsteadOfGrowing) {
  RelayHubOptions options;
  options.max_queued_frames = 2;
  RelayHub hub(options);
  auto session = hub.attach(kAttachedId);
  v1::PipelineFrame frame;
  EXPECT_TRUE(hub.forward(kAttachedId, frame, false, 0ms));
  EXPECT_TRUE(hub.forward(kAttachedId, frame, false, 0ms));
  EXPECT_FALSE(hub.forward(kAttachedId, frame, false, 20ms));
  v1::AttachDown down;
  ASSERT_TRUE(session->next(down, 1s));
  EXPECT_TRUE(hub.forward(kAttachedId, frame, false, 0ms)) << "room again";
}

TEST(RelayHub, AnIdAttachedByOnePeerCannotBeTakenOverByAnother) {
  RelayHubOptions options;
  options.binding_memory = 300ms;
  RelayHub hub(options);
  std::string why;
  auto session = hub.attach(kAttachedId, "serial 11", &why);
  ASSERT_TRUE(session);
  EXPECT_FALSE(hub.attach(kAttachedId, "serial 22", &why));
  EXPECT_NE(why.find("attached here by another peer"), std::string::npos) << why;
  EXPECT_FALSE(session->closed()) << "the refused attach leaves the session alone";
  // Its stream ended: the id stays bound to its owner for a while.
  hub.detach(session);
  EXPECT_FALSE(hub.attach(kAttachedId, "serial 22", &why));
  EXPECT_NE(why.find("moments ago"), std::string::npos) << why;
  auto again = hub.attach(kAttachedId, "serial 11", &why);
  ASSERT_TRUE(again) << "its owner comes back: " << why;
  hub.detach(again);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(hub.attach(kAttachedId, "serial 22", &why)) << "free again after binding_memory: " << why;
}

TEST(PeerAddress, ACallersHostIsItsPeerStringWithoutThePort) {
  EXPECT_EQ(peer_host("ipv4:10.0.0.1:5000"), "ipv4:10.0.0.1");
  EXPECT_EQ(peer_host("ipv6:[::1]:5000"), "ipv6:[::1]");
  EXPECT_EQ(peer_host("ipv6:%5B::1%5D:5000"), "ipv6:%5B::1%5D");
  EXPECT_EQ(peer_host("unix:/tmp/socket"), "unix:/tmp/socket");
  EXPECT_EQ(peer_host("ipv4:10.0.0.1:"), "ipv4:10.0.0.1:");
  EXPECT_EQ(peer_host(""), "");
}

TEST(RelayHub, ANewerAttachReplacesTheOlderAndStopClosesAll) {
  RelayHub hub;
  auto old_session = hub.attach(kAttachedId);
  auto new_session = hub.attach(kAttachedId);
  EXPECT_TRUE(old_session->closed());
  EXPECT_FALSE(new_session->closed());
  hub.detach(old_session);  // the old stream's end does not detach the new one
  EXPECT_TRUE(hub.attached(kAttachedId));
  hub.stop();
  EXPECT_TRUE(new_session->closed());
  EXPECT_FALSE(hub.attach(kAttachedId));
}

TEST(RelayHub, CallsAreAnsweredTimeOutOrFailWhenTheNodeDetaches) {
  RelayHub hub;
  auto session = hub.attach(kAttachedId);
  std::thread node([&] {
    v1::AttachDown down;
    ASSERT_TRUE(session->next(down, kPatience));
    ASSERT_TRUE(down.has_call());
    EXPECT_EQ(down.call().method(), "Cluster");
    v1::RelayedReply reply;
    reply.set_call(down.call().call());
    reply.set_reply("answer to " + down.call().request());
    session->answer(reply);
  });
  std::string reply;
  const grpc::Status status = hub.call(kAttachedId, "Cluster", "question", kPatience, reply);
  node.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply, "answer to question");
  EXPECT_EQ(hub.call(kAttachedId, "Cluster", "", 30ms, reply).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  std::thread detacher([&] {
    std::this_thread::sleep_for(30ms);
    hub.detach(session);
  });
  EXPECT_EQ(hub.call(kAttachedId, "Cluster", "", kPatience, reply).error_code(), grpc::StatusCode::UNAVAILABLE);
  detacher.join();
  EXPECT_EQ(hub.call(kAttachedId, "Cluster", "", 10ms, reply).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(RelayHub, FramesFromOtherNodesPassNoFasterThanTheSharedCap) {
  RelayHubOptions options;
  options.shared_bytes_per_second = 20000;
  RelayHub hub(options);
  auto session = hub.attach(kAttachedId);
  v1::PipelineFrame frame;
  frame.mutable_chunks()->add_chunks()->set_hidden(std::string(1000, 'x'));
  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hub.forward(kAttachedId, frame, true, kPatience));
  // 5 kB at 20 kB/s: the first goes at once, the last no sooner than 4 x 50 ms later.
  EXPECT_GE(Clock::now() - start, 190ms);
  const auto own = Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hub.forward(kAttachedId, frame, false, kPatience));
  EXPECT_LT(Clock::now() - own, 150ms) << "the node's own frames are not capped";
}

TEST(RelayAttachment, FramesAndCallsToTheRelayedAddressReachTheAttachedNode) {
  RecordingHandler relay_node("00000000000000a0"), attached(kAttachedId);
  attached.unreachable_reply = {"10.0.0.9:7"};
  PeerServerOptions options;
  options.host = "127.0.0.1";
  PeerServer relay(relay_node, options);
  RelayAttachment attachment(relay.address(), kAttachedId, attached);
  ASSERT_TRUE(eventually([&] { return attachment.attached() && relay.relay_hub().attached(kAttachedId); }));
  const std::string address = relayed_address(kAttachedId, relay.address());

  PeerLink link(address);
  for (RequestId i = 1; i <= 20; ++i) ASSERT_TRUE(link.send(ReleaseMessage{i}));
  ASSERT_TRUE(eventually([&] { return attached.count() == 20; })) << attached.count();
  const std::vector<PipelineMessage> got = attached.messages();
  for (RequestId i = 1; i <= 20; ++i) EXPECT_EQ(std::get<ReleaseMessage>(got[i - 1]).request, i) << "in order";
  EXPECT_EQ(relay_node.count(), 0u) << "the relay's own handler saw none of it";

  PeerClient client(address);
  NodeAnnouncement self;
  self.node_id = "00000000000000c1";
  self.address = "127.0.0.1:2";
  self.model_id = "m";
  const HeartbeatResult hb = client.heartbeat(self, 5s);
  EXPECT_EQ(hb.node.node_id, kAttachedId) << "answered by the attached node";
  EXPECT_EQ(hb.unreachable, std::vector<std::string>{"10.0.0.9:7"});
  EXPECT_EQ(client.assign({"m", 0, 4, 1}, 5s).error, "holding 0..4");
  EXPECT_EQ(client.cluster(5s), R"({"nodes":["a","b"]})");

  // A node not attached there: the call fails, naming why.
  PeerClient stranger(relayed_address("00000000000000b2", relay.address()));
  try {
    stranger.cluster(5s);
    ADD_FAILURE() << "a call to a node not attached went through";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not attached"), std::string::npos) << e.what();
  }
  // Detached: nothing more arrives, and the relay says so.
  attachment.close();
  ASSERT_TRUE(eventually([&] { return !relay.relay_hub().attached(kAttachedId); }));
  EXPECT_THROW(client.cluster(2s), Error);
}

TEST(ClusterViewReach, PicksTheReverseLinkThenALiveRelayAndAvoidsUnreachableAddresses) {
  ClusterViewConfig config;
  config.model_id = "m";
  config.n_layers = 8;
  config.self_id = "00000000000000a0";
  ClusterView view(config);
  auto node = [](const std::string& id, const std::string& address, int begin, int end) {
    return ready_stage(id, address, begin, end);  // unit/dataplane_requests.h
  };
  view.update(node("00000000000000a0", "127.0.0.1:7000", 0, 0));   // the head (self)
  view.update(node("00000000000000a1", "127.0.0.1:7001", 0, 4));   // reachable first stage
  view.update(node("00000000000000a9", "127.0.0.1:7009", 0, 0));   // a relay
  NodeAnnouncement hidden = node(kAttachedId, relayed_address(kAttachedId, "127.0.0.1:7009"), 4, 8);
  hidden.addresses = {relayed_address(kAttachedId, "127.0.0.1:7009"), relayed_address(kAttachedId, "127.0.0.1:7001"),
                      relayed_address(kAttachedId, "127.0.0.1:7555")};
  view.update(hidden);
  // The first stage is one of its relays: it writes to the attach stream itself.
  EXPECT_EQ(view.address_from(hidden, "00000000000000a1"), relayed_address(kAttachedId, "127.0.0.1:7001"));
  // Anyone else: the first address whose relay is live.
  EXPECT_EQ(view.address_from(hidden, "00000000000000a0"), relayed_address(kAttachedId, "127.0.0.1:7009"));
  view.mark_unreachable(kAttachedId, relayed_address(kAttachedId, "127.0.0.1:7009"), "refused");
  EXPECT_EQ(view.address_from(hidden, "00000000000000a0"), relayed_address(kAttachedId, "127.0.0.1:7001"));
  view.mark_reachable(kAttachedId, relayed_address(kAttachedId, "127.0.0.1:7009"));
  view.remove("00000000000000a9");  // the relay died
  EXPECT_EQ(view.address_from(hidden, "00000000000000a0"), relayed_address(kAttachedId, "127.0.0.1:7001"));

  // A route: each stage as its upstream reaches it, the relays it depends on, the head's address.
  const auto route = view.choose_route();
  ASSERT_TRUE(route);
  ASSERT_EQ(route->stages.size(), 2u);
  EXPECT_EQ(route->stages[0].address, "127.0.0.1:7001");
  EXPECT_EQ(route->stages[1].address, relayed_address(kAttachedId, "127.0.0.1:7001"));
  EXPECT_TRUE(route->relay_ids.empty()) << "a reverse link: the upstream stage relays, nobody else";
  EXPECT_EQ(route->head_address, "127.0.0.1:7000");

  // Every address unreachable: no route through it.
  view.mark_unreachable(kAttachedId, relayed_address(kAttachedId, "127.0.0.1:7001"), "refused");
  EXPECT_FALSE(view.choose_route());
  EXPECT_EQ(view.unreachable_addresses(kAttachedId).size(), 1u);
}

}  // namespace
}  // namespace px::swarm
