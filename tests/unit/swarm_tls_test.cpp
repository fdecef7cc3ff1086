// Mutual TLS on the peer service: members get answers, anyone else gets nothing, and a
// revocation cuts a member off even on a connection it opened before.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "swarm/credential_authority.h"
#include "swarm/peer_client.h"
#include "swarm/peer_link.h"
#include "swarm/peer_server.h"
#include "swarm/peer_tls.h"
#include "swarm/relay_attachment.h"
#include "swarm/relay_hub.h"
#include "swarm/swarm_node.h"
#include "unit/test_temp_dir.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

class Handler : public PeerHandler {
 public:
  void on_pipeline(PipelineMessage) override { ++frames; }
  NodeAnnouncement on_heartbeat(const NodeAnnouncement&) override {
    ++heartbeats;
    NodeAnnouncement self;
    self.node_id = "00000000000000aa";
    self.address = "127.0.0.1:1";
    self.state = "ready";
    return self;
  }
  AssignReply on_assign(const Assignment&) override { return {true, {}}; }
  void on_abort(RequestId) override {}
  JoinReplyData on_join(const NodeAnnouncement&) override { return {true, {}, {}, std::nullopt, {}}; }
  std::string on_cluster() override { return R"({"ok":true})"; }
  std::atomic<int> frames{0};
  std::atomic<int> heartbeats{0};
};

struct TlsSwarm {
  std::string root, other_root;
  std::shared_ptr<SwarmCredentials> server_credentials;
  std::shared_ptr<const PeerTls> server_tls, member, other_member, foreigner;

  TlsSwarm() {
    static int n = 0;
    const std::string base = test::temp_dir() + "tls-" + std::to_string(n++) + "/";
    std::filesystem::remove_all(base);
    root = base + "root", other_root = base + "other";
    create_swarm_root(root, "ours");
    create_swarm_root(other_root, "theirs");
    issue_node_credential(root, base + "server", "server", 30);
    issue_node_credential(root, base + "member", "member", 30);
    issue_node_credential(root, base + "other-member", "other-member", 30);
    issue_node_credential(other_root, base + "foreigner", "foreigner", 30);
    server_credentials = SwarmCredentials::load(base + "server");
    server_tls = std::make_shared<PeerTls>(server_credentials);
    member = std::make_shared<PeerTls>(SwarmCredentials::load(base + "member"));
    other_member = std::make_shared<PeerTls>(SwarmCredentials::load(base + "other-member"));
    foreigner = std::make_shared<PeerTls>(SwarmCredentials::load(base + "foreigner"));
  }
};

PeerServerOptions tls_server(std::shared_ptr<const PeerTls> tls) {
  PeerServerOptions options;
  options.host = "127.0.0.1";
  options.tls = std::move(tls);
  return options;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PeerTls, MembersAreAnsweredAndEveryoneElseIsRefusedAtTheHandshake) {
  TlsSwarm swarm;
  Handler handler;
  PeerServer server(handler, tls_server(swarm.server_tls));
  const std::string address = server.address();

  EXPECT_EQ(PeerClient(address, swarm.member).cluster(5s), R"({"ok":true})");
  // Plain HTTP/2 (no TLS): the connection is closed without an answer.
  EXPECT_NE(error_of([&] { PeerClient(address).cluster(2s); }).find("failed"), std::string::npos);
  // Another swarm's credential: refused, and this side says why.
  const std::string foreign = error_of([&] { PeerClient(address, swarm.foreigner).cluster(2s); });
  EXPECT_NE(foreign.find("issued by another swarm's root"), std::string::npos) << foreign;
  EXPECT_EQ(swarm.foreigner->refusal(address).empty(), false);
  EXPECT_EQ(swarm.member->serial_at(address), swarm.server_credentials->self().serial);
  EXPECT_EQ(handler.frames.load(), 0);
}

TEST(PeerTls, ARevokedMemberIsCutOffOnItsOpenConnectionToo) {
  TlsSwarm swarm;
  Handler handler;
  PeerServer server(handler, tls_server(swarm.server_tls));
  const std::string address = server.address();
  PeerClient client(address, swarm.member);
  ASSERT_EQ(client.cluster(5s), R"({"ok":true})");
  PeerLinkOptions link_options;
  link_options.tls = swarm.member;
  PeerLink link(address, link_options);
  link.send(ReleaseMessage{1});
  for (int i = 0; i < 100 && handler.frames.load() == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(handler.frames.load(), 1);

  ASSERT_TRUE(swarm.server_credentials->adopt_revocations(revoke_credential(swarm.root, "member").file_text));
  EXPECT_EQ(server.drop_refused_streams(), 1u);
  const std::string refused = error_of([&] { client.cluster(2s); });
  EXPECT_NE(refused.find("PERMISSION_DENIED"), std::string::npos) << refused;
  EXPECT_NE(refused.find("revoked"), std::string::npos) << refused;
  // Its reconnecting link gets no frame through either.
  link.send(ReleaseMessage{2});
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(handler.frames.load(), 1);
}

// Reads the protocol version a plain OpenSSL client negotiates with the peer service.
int negotiated_version(int port, const SwarmCredentials& credentials) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  const auto key = ossl::key_from_pem(credentials.key_pem(), "key");
  const auto cert = ossl::cert_from_pem(credentials.cert_pem(), "cert");
  SSL_CTX_use_certificate(ctx, cert.get());
  SSL_CTX_use_PrivateKey(ctx, key.get());
  static const unsigned char alpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  int version = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) version = SSL_version(ssl);
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  return version;
}

TEST(PeerTls, PeersNegotiateTls13) {
  TlsSwarm swarm;
  Handler handler;
  PeerServer server(handler, tls_server(swarm.server_tls));
  EXPECT_EQ(negotiated_version(server.port(), swarm.member->credentials()), TLS1_3_VERSION);
}

TEST(PeerTls, AMemberCannotAttachUnderTheNodeIdAnotherMemberAttachedWith) {
  // A node behind NAT attaches to the server as 00000000000000b1; another member claiming that id
  // (to receive the frames peers send to "00000000000000b1@server") is refused while it is bound.
  TlsSwarm swarm;
  Handler server_handler, owner_handler, intruder_handler;
  PeerServer server(server_handler, tls_server(swarm.server_tls));
  RelayAttachmentOptions owner_options, intruder_options;
  owner_options.tls = swarm.member;
  intruder_options.tls = swarm.other_member;
  RelayAttachment owner(server.address(), "00000000000000b1", owner_handler, owner_options);
  for (int i = 0; i < 100 && !owner.attached(); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(owner.attached());
  RelayAttachment intruder(server.address(), "00000000000000b1", intruder_handler, intruder_options);
  std::this_thread::sleep_for(500ms);  // several attempts
  EXPECT_FALSE(intruder.attached());
  EXPECT_TRUE(owner.attached());
  // Calls for the id still reach its owner.
  NodeAnnouncement caller;
  caller.node_id = "00000000000000c1";
  caller.address = "127.0.0.1:2";
  PeerClient("00000000000000b1@" + server.address(), swarm.member).heartbeat(caller, 5s);
  EXPECT_EQ(owner_handler.heartbeats.load(), 1);
  EXPECT_EQ(intruder_handler.heartbeats.load(), 0);
}

TEST(PeerTls, ANodeWithoutCredentialsRefusesToServeBeyondLoopback) {
  SwarmNodeConfig config;
  config.model_path = "/nonexistent.gguf";  // refused before the model is opened
  config.host = "0.0.0.0";
  const std::string error = error_of([&] { SwarmNode node(config); });
  EXPECT_NE(error.find("without --credentials"), std::string::npos) << error;
  EXPECT_NE(error.find("--open"), std::string::npos) << error;
}

}  // namespace
}  // namespace px::swarm
