#pragma once
// What the peer service does with each call, on a PeerHandler, apart from how the call arrived:
// the gRPC service (peer_server) runs these for calls made to it, and an attached node
// (relay_attachment) runs them for the calls and frames its relays pass it down an Attach
// stream. Input is validated here; neither hostile input nor a failing handler escapes as an
// exception.
#include <grpcpp/support/status.h>

#include <string>

#include "swarm/wire_codec.h"

namespace px::swarm {

class PeerHandler;

// A pipeline frame: decoded and handed to the handler. Returns why it was dropped, or "".
std::string deliver_frame(PeerHandler& handler, const v1::PipelineFrame& frame);

// A unary call by its method name ("Heartbeat", "Assign", ... as in service Peer), its request
// and reply serialized: what a relayed call carries. `caller` names the caller in logs.
grpc::Status serve_call(PeerHandler& handler, const std::string& method, const std::string& request,
                        std::string& reply, const std::string& caller);

// The typed calls (`received_unix_micros`: when the heartbeat arrived).
grpc::Status serve_heartbeat(PeerHandler& handler, const v1::HeartbeatRequest& request, v1::HeartbeatReply& reply,
                             int64_t received_unix_micros, const std::string& caller);
grpc::Status serve_assign(PeerHandler& handler, const v1::Assignment& request, v1::AssignReply& reply,
                          const std::string& caller);
grpc::Status serve_abort(PeerHandler& handler, const v1::AbortRequest& request, const std::string& caller);
grpc::Status serve_join(PeerHandler& handler, const v1::NodeAnnouncement& request, v1::JoinReply& reply,
                        const std::string& caller);
grpc::Status serve_cluster(PeerHandler& handler, v1::ClusterReply& reply, const std::string& caller);
grpc::Status serve_revoke(PeerHandler& handler, const v1::RevocationNotice& request, v1::RevocationReply& reply,
                          const std::string& caller);

}  // namespace px::swarm
