#include "swarm/peer_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <set>

#include "core/clock.h"
#include "core/error.h"
#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_channel.h"
#include "swarm/peer_tls.h"
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

// Runs one unary call's body and turns whatever it throws into a status, so neither hostile
// input nor a failing handler can escape into gRPC's threads.
template <typename Body>
grpc::Status guarded(const char* rpc, const grpc::ServerContext& context, Body&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (const Rejected& e) {
    spdlog::warn("peer service: rejected {} from {}: {}", rpc, context.peer(), e.what());
    return {grpc::StatusCode::INVALID_ARGUMENT, wire::wire_text(e.what())};
  } catch (const std::exception& e) {
    spdlog::warn("peer service: {} from {} failed: {}", rpc, context.peer(), e.what());
    return {grpc::StatusCode::INTERNAL, wire::wire_text(e.what())};
  } catch (...) {
    spdlog::warn("peer service: {} from {} failed with an unknown exception", rpc, context.peer());
    return {grpc::StatusCode::INTERNAL, "unknown exception"};
  }
}

}  // namespace

class PeerServer::Service final : public v1::Peer::Service {
 public:
  Service(PeerHandler& handler, std::shared_ptr<const PeerTls> tls) : handler_(handler), tls_(std::move(tls)) {}

  grpc::Status Pipeline(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::PipelineAck, v1::PipelineFrame>* stream) override {
    if (grpc::Status refused = authorize("pipeline", *context); !refused.ok()) return refused;
    if (!register_stream(context)) return {grpc::StatusCode::UNAVAILABLE, "the peer service is shutting down"};
    v1::PipelineFrame frame;
    uint64_t received = 0;
    while (stream->Read(&frame)) {
      ++received;
      const std::string error = deliver(frame);
      if (error.empty()) continue;
      spdlog::warn("peer service: dropped pipeline frame {} from {}: {}", received, context->peer(), error);
      v1::PipelineAck ack;
      ack.set_frames_received(received);
      ack.set_error(wire::wire_text(error));
      if (!stream->Write(ack)) break;
    }
    unregister_stream(context);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatReply* reply) override {
    const int64_t received = unix_micros();
    if (grpc::Status refused = authorize("heartbeat", *context); !refused.ok()) return refused;
    return guarded("heartbeat", *context, [&] {
      const NodeAnnouncement from = validated([&] {
        if (!request->has_node()) fail("heartbeat without the sender's announcement");
        return wire::decode(request->node());
      });
      wire::encode(handler_.on_heartbeat(from), *reply->mutable_node());
      reply->set_received_unix_micros(received);
    });
  }

  grpc::Status Assign(grpc::ServerContext* context, const v1::Assignment* request, v1::AssignReply* reply) override {
    if (grpc::Status refused = authorize("assign", *context); !refused.ok()) return refused;
    return guarded("assign", *context, [&] {
      const Assignment assignment = validated([&] { return wire::decode(*request); });
      wire::encode(handler_.on_assign(assignment), *reply);
    });
  }

  grpc::Status Abort(grpc::ServerContext* context, const v1::AbortRequest* request, v1::Empty*) override {
    if (grpc::Status refused = authorize("abort", *context); !refused.ok()) return refused;
    return guarded("abort", *context, [&] { handler_.on_abort(request->request()); });
  }

  grpc::Status Join(grpc::ServerContext* context, const v1::NodeAnnouncement* request, v1::JoinReply* reply) override {
    if (grpc::Status refused = authorize("join", *context); !refused.ok()) return refused;
    return guarded("join", *context, [&] {
      const NodeAnnouncement node = validated([&] { return wire::decode(*request); });
      wire::encode(handler_.on_join(node), *reply);
    });
  }

  grpc::Status Cluster(grpc::ServerContext* context, const v1::Empty*, v1::ClusterReply* reply) override {
    // Sanitized like every text this node sends: invalid UTF-8 would make the reply unparseable.
    if (grpc::Status refused = authorize("cluster", *context); !refused.ok()) return refused;
    return guarded("cluster", *context, [&] { reply->set_json(wire::wire_text(handler_.on_cluster(), SIZE_MAX)); });
  }

  grpc::Status Revoke(grpc::ServerContext* context, const v1::RevocationNotice* request,
                      v1::RevocationReply* reply) override {
    if (grpc::Status refused = authorize("revoke", *context); !refused.ok()) return refused;
    return guarded("revoke", *context, [&] {
      const std::string list = validated([&] {
        if (request->list().size() > wire::kMaxRevocationListLength) fail("revocation list too long");
        return request->list();
      });
      wire::encode(handler_.on_revocations(list), *reply);
    });
  }

  size_t drop_refused_streams() {
    if (!tls_) return 0;
    std::lock_guard lock(mutex_);
    size_t dropped = 0;
    for (grpc::ServerContext* context : streams_) {
      if (!tls_->check_call(*context->auth_context()).empty()) {
        context->TryCancel();
        ++dropped;
      }
    }
    return dropped;
  }

  // Pipeline streams never end by themselves (the sender keeps them open), so shutdown cancels
  // them instead of waiting out the grace period; streams that start later are refused.
  void stop_streams() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (grpc::ServerContext* context : streams_) context->TryCancel();
  }

 private:
  // Decodes a frame and hands it to the handler; returns why it was dropped, or "".
  std::string deliver(const v1::PipelineFrame& frame) {
    PipelineMessage message;
    try {
      message = wire::decode(frame);
    } catch (const std::exception& e) {
      return fmt::format("invalid frame: {}", e.what());
    }
    try {
      handler_.on_pipeline(std::move(message));
    } catch (const std::exception& e) {
      return fmt::format("the receiver failed on the frame: {}", e.what());
    } catch (...) {
      return "the receiver failed on the frame with an unknown exception";
    }
    return {};
  }

  bool register_stream(grpc::ServerContext* context) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    streams_.insert(context);
    return true;
  }

  void unregister_stream(grpc::ServerContext* context) {
    std::lock_guard lock(mutex_);
    streams_.erase(context);
  }

  // The handshake admitted the peer; a revocation since then refuses its calls.
  grpc::Status authorize(const char* rpc, const grpc::ServerContext& context) {
    if (!tls_) return grpc::Status::OK;
    const std::string refusal = tls_->check_call(*context.auth_context());
    if (refusal.empty()) return grpc::Status::OK;
    {
      // A refused peer keeps calling (heartbeats): its reason is logged once.
      std::lock_guard lock(mutex_);
      if (warned_refusals_.size() >= 1024) warned_refusals_.clear();
      if (warned_refusals_.insert(refusal).second) {
        spdlog::warn("peer service: refused {} from {}: {}", rpc, context.peer(), refusal);
      }
    }
    return {grpc::StatusCode::PERMISSION_DENIED, wire::wire_text(refusal)};
  }

  PeerHandler& handler_;
  const std::shared_ptr<const PeerTls> tls_;
  std::mutex mutex_;
  bool stopping_ = false;
  std::set<grpc::ServerContext*> streams_;  // open Pipeline calls, valid until unregistered
  std::set<std::string> warned_refusals_;
};

std::string join_host_port(const std::string& host, int port) {
  const bool bare_ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return bare_ipv6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

PeerServer::PeerServer(PeerHandler& handler, PeerServerOptions options)
    : options_(std::move(options)), service_(std::make_unique<Service>(handler, options_.tls)) {
  if (options_.port < 0 || options_.port > 65535) fail("peer service: port {} is out of range [0, 65535]", options_.port);
  const std::string listen = join_host_port(options_.host, options_.port);
  if (options_.tls) route_grpc_logs();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, options_.tls ? options_.tls->server_credentials() : grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(service_.get());
  configure_peer_server(builder, options_.max_message_bytes);
  grpc::ResourceQuota quota("parallax-peer-service");
  quota.SetMaxThreads(options_.max_threads);
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    fail("peer service: cannot listen on {} (port taken or address not local)", listen);
  }
  spdlog::debug("peer service: listening on {}", address());
}

PeerServer::~PeerServer() { shutdown(); }

size_t PeerServer::drop_refused_streams() { return service_->drop_refused_streams(); }

std::string PeerServer::address() const { return join_host_port(options_.host, port_); }

void PeerServer::shutdown() {
  std::lock_guard lock(shutdown_mutex_);
  if (!server_) return;
  service_->stop_streams();
  server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
  server_->Wait();
  server_.reset();
}

}  // namespace px::swarm
