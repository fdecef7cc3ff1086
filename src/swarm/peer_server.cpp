#include "swarm/peer_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_address.h"
#include "swarm/peer_calls.h"
#include "swarm/peer_channel.h"
#include "swarm/peer_tls.h"
#include "swarm/relay_hub.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

// The node a stream or call is for, when it came to be relayed ("" otherwise).
std::string relay_to(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find(kRelayToMetadata);
  if (found == metadata.end()) return {};
  return std::string(found->second.data(), found->second.size());
}

// How long a relayed frame may wait for room before the sender's stream is ended.
constexpr std::chrono::seconds kRelayWait{10};

}  // namespace

class PeerServer::Service final : public v1::Peer::Service {
 public:
  Service(PeerHandler& handler, std::shared_ptr<const PeerTls> tls, RelayHubOptions relay)
      : handler_(handler), tls_(std::move(tls)), hub_(relay) {}

  grpc::Status Pipeline(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::PipelineAck, v1::PipelineFrame>* stream) override {
    if (grpc::Status refused = authorize("pipeline", *context); !refused.ok()) return refused;
    if (!register_stream(context)) return {grpc::StatusCode::UNAVAILABLE, "the peer service is shutting down"};
    if (const std::string to = relay_to(*context); !to.empty()) {
      grpc::Status status = relay_stream(*context, to, *stream);
      unregister_stream(context);
      return status;
    }
    v1::PipelineFrame frame;
    uint64_t received = 0;
    while (stream->Read(&frame)) {
      ++received;
      const std::string error = deliver_frame(handler_, frame);
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
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Heartbeat", *request, *reply);
    return serve_heartbeat(handler_, *request, *reply, received, context->peer());
  }

  grpc::Status Assign(grpc::ServerContext* context, const v1::Assignment* request, v1::AssignReply* reply) override {
    if (grpc::Status refused = authorize("assign", *context); !refused.ok()) return refused;
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Assign", *request, *reply);
    return serve_assign(handler_, *request, *reply, context->peer());
  }

  grpc::Status Abort(grpc::ServerContext* context, const v1::AbortRequest* request, v1::Empty* reply) override {
    if (grpc::Status refused = authorize("abort", *context); !refused.ok()) return refused;
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Abort", *request, *reply);
    return serve_abort(handler_, *request, context->peer());
  }

  grpc::Status Join(grpc::ServerContext* context, const v1::NodeAnnouncement* request, v1::JoinReply* reply) override {
    if (grpc::Status refused = authorize("join", *context); !refused.ok()) return refused;
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Join", *request, *reply);
    return serve_join(handler_, *request, *reply, context->peer());
  }

  grpc::Status Cluster(grpc::ServerContext* context, const v1::Empty* request, v1::ClusterReply* reply) override {
    if (grpc::Status refused = authorize("cluster", *context); !refused.ok()) return refused;
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Cluster", *request, *reply);
    return serve_cluster(handler_, *reply, context->peer());
  }

  grpc::Status Revoke(grpc::ServerContext* context, const v1::RevocationNotice* request,
                      v1::RevocationReply* reply) override {
    if (grpc::Status refused = authorize("revoke", *context); !refused.ok()) return refused;
    if (const std::string to = relay_to(*context); !to.empty()) return relay_call(*context, to, "Revoke", *request, *reply);
    return serve_revoke(handler_, *request, *reply, context->peer());
  }

  // A node that accepts no connections keeps this open; frames and calls for it go down it.
  grpc::Status Attach(grpc::ServerContext* context, grpc::ServerReaderWriter<v1::AttachDown, v1::AttachUp>* stream) override {
    if (grpc::Status refused = authorize("attach", *context); !refused.ok()) return refused;
    v1::AttachUp up;
    if (!stream->Read(&up) || !up.has_hello()) return {grpc::StatusCode::INVALID_ARGUMENT, "attach: expected a hello first"};
    const std::string node_id = up.hello().node_id();
    if (!is_node_id(node_id)) return {grpc::StatusCode::INVALID_ARGUMENT, "attach: the node id must be 16 hex digits"};
    if (!register_stream(context)) return {grpc::StatusCode::UNAVAILABLE, "the peer service is shutting down"};
    // Who attaches: its credential in a private swarm, else its host (a node re-attaching after
    // its NAT gave it a new port keeps its host).
    const std::string owner = tls_ ? "serial " + tls_->caller_serial(*context->auth_context()) : peer_host(context->peer());
    std::string refusal;
    const std::shared_ptr<RelayHub::Session> session = hub_.attach(node_id, owner, &refusal);
    if (!session) {
      unregister_stream(context);
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, wire::wire_text("attach: " + refusal)};
    }
    spdlog::info("peer service: node {} attached from {}", node_id, context->peer());
    // The attached node's answers, read beside the writes below.
    std::thread reader([&] {
      v1::AttachUp answer;
      while (stream->Read(&answer)) {
        if (answer.has_reply()) session->answer(answer.reply());
      }
      hub_.detach(session);
    });
    v1::AttachDown down;
    while (!context->IsCancelled()) {
      if (!session->next(down, std::chrono::milliseconds(200))) {
        if (session->closed()) break;
        continue;
      }
      if (!stream->Write(down)) break;
    }
    context->TryCancel();  // ends the reader's Read
    reader.join();
    hub_.detach(session);
    unregister_stream(context);
    spdlog::info("peer service: node {} detached", node_id);
    return grpc::Status::OK;
  }

  RelayHub& hub() { return hub_; }

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

  // Frames of a stream sent to "<node id>@<this node>", passed to that node's attach stream.
  grpc::Status relay_stream(grpc::ServerContext& context, const std::string& node_id,
                            grpc::ServerReaderWriter<v1::PipelineAck, v1::PipelineFrame>& stream) {
    if (!hub_.attached(node_id)) {
      return {grpc::StatusCode::UNAVAILABLE, wire::wire_text("node " + node_id + " is not attached to this relay")};
    }
    v1::PipelineFrame frame;
    while (stream.Read(&frame)) {
      if (!hub_.forward(node_id, std::move(frame), /*shared=*/true, kRelayWait)) {
        // Gone, or stuck: the sender sees its stream end and reconnects (or its head reroutes).
        return {grpc::StatusCode::UNAVAILABLE, wire::wire_text("node " + node_id + " is no longer reachable through this relay")};
      }
      frame = v1::PipelineFrame();
    }
    return grpc::Status::OK;
  }

  template <typename Request, typename Reply>
  grpc::Status relay_call(const grpc::ServerContext& context, const std::string& node_id, const char* method,
                          const Request& request, Reply& reply) {
    const auto left = context.deadline() - std::chrono::system_clock::now();
    const auto timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(left),
                                    std::chrono::milliseconds(1), std::chrono::milliseconds(30000));
    std::string answer;
    grpc::Status status = hub_.call(node_id, method, request.SerializeAsString(), timeout, answer);
    if (status.ok() && !reply.ParseFromString(answer)) return {grpc::StatusCode::INTERNAL, "the relayed reply does not parse"};
    return status;
  }

  PeerHandler& handler_;
  const std::shared_ptr<const PeerTls> tls_;
  RelayHub hub_;
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
    : options_(std::move(options)), service_(std::make_unique<Service>(handler, options_.tls, options_.relay)) {
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

RelayHub& PeerServer::relay_hub() { return service_->hub(); }

void PeerServer::shutdown() {
  std::lock_guard lock(shutdown_mutex_);
  if (!server_) return;
  service_->hub().stop();
  service_->stop_streams();
  server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
  server_->Wait();
  server_.reset();
}

}  // namespace px::swarm
