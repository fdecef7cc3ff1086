#include "swarm/peer_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "core/clock.h"
#include "core/error.h"
#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_address.h"
#include "swarm/peer_channel.h"
#include "swarm/peer_tls.h"
#include "swarm/wire_codec.h"

namespace px::swarm {

struct PeerClient::Impl {
  Impl(std::string address_in, std::shared_ptr<const PeerTls> tls_in, int max_message_bytes)
      : address(std::move(address_in)),
        relay_to(relay_target(address)),
        tls(std::move(tls_in)),
        stub(v1::Peer::NewStub(
            open_peer_channel(dial_address(address), {max_message_bytes, std::chrono::milliseconds(2000), tls}))) {}

  // One unary call with a deadline; a failed call becomes a px::Error naming `rpc` and the peer.
  template <typename Request, typename Reply>
  void call(const char* rpc, std::chrono::milliseconds timeout,
            grpc::Status (v1::Peer::Stub::*method)(grpc::ClientContext*, const Request&, Reply*), const Request& request,
            Reply& reply) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!relay_to.empty()) context.AddMetadata(kRelayToMetadata, relay_to);
    const grpc::Status status = (stub.get()->*method)(&context, request, &reply);
    if (status.ok()) return;
    // gRPC reports a refused handshake as a failed connection; say what this side refused.
    const std::string refused = tls ? tls->refusal(address) : std::string();
    if (!refused.empty()) fail("{} to peer {} failed: this node refused the peer: {}", rpc, address, refused);
    fail("{} to peer {} failed: {}", rpc, address, describe_status(status));
  }

  // Decodes a peer's reply; a reply that fails validation is that peer's error.
  template <typename Decode>
  auto checked(const char* rpc, Decode&& decode) -> decltype(decode()) {
    try {
      return decode();
    } catch (const Error& e) {
      fail("{} to peer {}: invalid reply: {}", rpc, address, e.what());
    }
  }

  const std::string address;
  const std::string relay_to;  // a relayed address: the node the one dialled passes the calls to
  const std::shared_ptr<const PeerTls> tls;
  const std::unique_ptr<v1::Peer::Stub> stub;
};

PeerClient::PeerClient(std::string address, std::shared_ptr<const PeerTls> tls, int max_message_bytes)
    : impl_(std::make_unique<Impl>(std::move(address), std::move(tls), max_message_bytes)) {}

PeerClient::~PeerClient() = default;

const std::string& PeerClient::address() const { return impl_->address; }

HeartbeatResult PeerClient::heartbeat(const NodeAnnouncement& self, std::chrono::milliseconds timeout) {
  return probe(self, 0, timeout);
}

HeartbeatResult PeerClient::probe(const NodeAnnouncement& self, size_t padding_bytes, std::chrono::milliseconds timeout) {
  v1::HeartbeatRequest request;
  wire::encode(self, *request.mutable_node());
  request.set_sent_unix_micros(unix_micros());
  if (padding_bytes > 0) request.mutable_padding()->assign(std::min(padding_bytes, wire::kMaxProbeBytes), '\0');
  v1::HeartbeatReply reply;
  const char* what = padding_bytes > 0 ? "probe" : "heartbeat";
  const auto start = std::chrono::steady_clock::now();
  impl_->call(what, timeout, &v1::Peer::Stub::Heartbeat, request, reply);
  const std::chrono::duration<double> rtt = std::chrono::steady_clock::now() - start;
  return impl_->checked(what, [&] {
    if (!reply.has_node()) fail("no announcement");
    HeartbeatResult result{wire::decode(reply.node()), reply.received_unix_micros(), rtt.count(), {}};
    for (const std::string& a : reply.unreachable()) {
      if (result.unreachable.size() == wire::kMaxAnnouncedAddresses) break;
      result.unreachable.push_back(wire::wire_text(a, wire::kMaxAddressLength));
    }
    return result;
  });
}

AssignReply PeerClient::assign(const Assignment& assignment, std::chrono::milliseconds timeout) {
  v1::Assignment request;
  wire::encode(assignment, request);
  v1::AssignReply reply;
  impl_->call("assign", timeout, &v1::Peer::Stub::Assign, request, reply);
  return impl_->checked("assign", [&] { return wire::decode(reply); });
}

void PeerClient::abort(RequestId request_id, std::chrono::milliseconds timeout) {
  v1::AbortRequest request;
  request.set_request(request_id);
  v1::Empty reply;
  impl_->call("abort", timeout, &v1::Peer::Stub::Abort, request, reply);
}

JoinReplyData PeerClient::join(const NodeAnnouncement& self, std::chrono::milliseconds timeout) {
  v1::NodeAnnouncement request;
  wire::encode(self, request);
  v1::JoinReply reply;
  impl_->call("join", timeout, &v1::Peer::Stub::Join, request, reply);
  return impl_->checked("join", [&] { return wire::decode(reply); });
}

std::string PeerClient::cluster(std::chrono::milliseconds timeout) {
  v1::Empty request;
  v1::ClusterReply reply;
  impl_->call("cluster", timeout, &v1::Peer::Stub::Cluster, request, reply);
  return std::move(*reply.mutable_json());
}

RevocationReplyData PeerClient::revoke(const std::string& list, std::chrono::milliseconds timeout) {
  v1::RevocationNotice request;
  request.set_list(list);
  v1::RevocationReply reply;
  impl_->call("revoke", timeout, &v1::Peer::Stub::Revoke, request, reply);
  return impl_->checked("revoke", [&] { return wire::decode(reply); });
}

}  // namespace px::swarm
