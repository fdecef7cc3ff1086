#include "swarm/peer_calls.h"

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/error.h"
#include "swarm/peer_server.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

// Input that failed validation (as opposed to a handler that failed on valid input).
class Rejected : public Error {
 public:
  using Error::Error;
};

template <typename Decode>
auto validated(Decode&& decode) -> decltype(decode()) {
  try {
    return decode();
  } catch (const std::exception& e) {
    throw Rejected(e.what());
  }
}

// Runs one call's body and turns whatever it throws into a status.
template <typename Body>
grpc::Status guarded(const char* rpc, const std::string& caller, Body&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (const Rejected& e) {
    spdlog::warn("peer service: rejected {} from {}: {}", rpc, caller, e.what());
    return {grpc::StatusCode::INVALID_ARGUMENT, wire::wire_text(e.what())};
  } catch (const std::exception& e) {
    spdlog::warn("peer service: {} from {} failed: {}", rpc, caller, e.what());
    return {grpc::StatusCode::INTERNAL, wire::wire_text(e.what())};
  } catch (...) {
    spdlog::warn("peer service: {} from {} failed with an unknown exception", rpc, caller);
    return {grpc::StatusCode::INTERNAL, "unknown exception"};
  }
}

// Parses a relayed request, serves it and serializes the reply.
template <typename Request, typename Reply, typename Serve>
grpc::Status relayed(const std::string& request, std::string& reply, Serve&& serve) {
  Request in;
  if (!in.ParseFromString(request)) return {grpc::StatusCode::INVALID_ARGUMENT, "the relayed request does not parse"};
  Reply out;
  grpc::Status status = serve(in, out);
  if (status.ok()) out.SerializeToString(&reply);
  return status;
}

}  // namespace

std::string deliver_frame(PeerHandler& handler, const v1::PipelineFrame& frame) {
  PipelineMessage message;
  try {
    message = wire::decode(frame);
  } catch (const std::exception& e) {
    return fmt::format("invalid frame: {}", e.what());
  }
  try {
    handler.on_pipeline(std::move(message));
  } catch (const std::exception& e) {
    return fmt::format("the receiver failed on the frame: {}", e.what());
  } catch (...) {
    return "the receiver failed on the frame with an unknown exception";
  }
  return {};
}

grpc::Status serve_heartbeat(PeerHandler& handler, const v1::HeartbeatRequest& request, v1::HeartbeatReply& reply,
                             int64_t received_unix_micros, const std::string& caller) {
  return guarded("heartbeat", caller, [&] {
    const NodeAnnouncement from = validated([&] {
      if (!request.has_node()) fail("heartbeat without the sender's announcement");
      if (request.padding().size() > wire::kMaxProbeBytes)
        fail("probe padding of {} bytes, over the limit of {}", request.padding().size(), wire::kMaxProbeBytes);
      return wire::decode(request.node());
    });
    wire::encode(handler.on_heartbeat(from), *reply.mutable_node());
    reply.set_received_unix_micros(received_unix_micros);
    reply.clear_unreachable();
    for (const std::string& address : handler.unreachable_at(from.node_id)) {
      if (reply.unreachable_size() == int(wire::kMaxAnnouncedAddresses)) break;
      reply.add_unreachable(wire::wire_text(address, wire::kMaxAddressLength));
    }
  });
}

grpc::Status serve_assign(PeerHandler& handler, const v1::Assignment& request, v1::AssignReply& reply,
                          const std::string& caller) {
  return guarded("assign", caller, [&] {
    const Assignment assignment = validated([&] { return wire::decode(request); });
    wire::encode(handler.on_assign(assignment), reply);
  });
}

grpc::Status serve_abort(PeerHandler& handler, const v1::AbortRequest& request, const std::string& caller) {
  return guarded("abort", caller, [&] { handler.on_abort(request.request()); });
}

grpc::Status serve_join(PeerHandler& handler, const v1::NodeAnnouncement& request, v1::JoinReply& reply,
                        const std::string& caller) {
  return guarded("join", caller, [&] {
    const NodeAnnouncement node = validated([&] { return wire::decode(request); });
    wire::encode(handler.on_join(node), reply);
  });
}

grpc::Status serve_cluster(PeerHandler& handler, v1::ClusterReply& reply, const std::string& caller) {
  // Sanitized like every text this node sends: invalid UTF-8 would make the reply unparseable.
  return guarded("cluster", caller, [&] { reply.set_json(wire::wire_text(handler.on_cluster(), SIZE_MAX)); });
}

grpc::Status serve_revoke(PeerHandler& handler, const v1::RevocationNotice& request, v1::RevocationReply& reply,
                          const std::string& caller) {
  return guarded("revoke", caller, [&] {
    const std::string list = validated([&] {
      if (request.list().size() > wire::kMaxRevocationListLength) fail("revocation list too long");
      return request.list();
    });
    wire::encode(handler.on_revocations(list), reply);
  });
}

grpc::Status serve_call(PeerHandler& handler, const std::string& method, const std::string& request,
                        std::string& reply, const std::string& caller) {
  if (method == "Heartbeat") {
    const int64_t received = unix_micros();
    return relayed<v1::HeartbeatRequest, v1::HeartbeatReply>(request, reply, [&](const auto& in, auto& out) {
      return serve_heartbeat(handler, in, out, received, caller);
    });
  }
  if (method == "Assign") {
    return relayed<v1::Assignment, v1::AssignReply>(
        request, reply, [&](const auto& in, auto& out) { return serve_assign(handler, in, out, caller); });
  }
  if (method == "Abort") {
    return relayed<v1::AbortRequest, v1::Empty>(request, reply,
                                                [&](const auto& in, auto&) { return serve_abort(handler, in, caller); });
  }
  if (method == "Join") {
    return relayed<v1::NodeAnnouncement, v1::JoinReply>(
        request, reply, [&](const auto& in, auto& out) { return serve_join(handler, in, out, caller); });
  }
  if (method == "Cluster") {
    return relayed<v1::Empty, v1::ClusterReply>(request, reply,
                                                [&](const auto&, auto& out) { return serve_cluster(handler, out, caller); });
  }
  if (method == "Revoke") {
    return relayed<v1::RevocationNotice, v1::RevocationReply>(
        request, reply, [&](const auto& in, auto& out) { return serve_revoke(handler, in, out, caller); });
  }
  return {grpc::StatusCode::UNIMPLEMENTED, wire::wire_text("no peer call named " + method)};
}

}  // namespace px::swarm
