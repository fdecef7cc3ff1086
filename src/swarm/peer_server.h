#pragma once
// The server side of the peer protocol: a gRPC server hosting service Peer
// (proto/parallax.proto) that decodes and validates what peers send and hands plain C++
// messages to a PeerHandler. Nothing here exposes gRPC or protobuf types.
//
// Threading (what a handler implementation must know):
//  - Each incoming Pipeline stream (one per upstream neighbour) is served by its own gRPC
//    thread, which reads the stream's frames in order and calls on_pipeline for each before
//    reading the next. Calls for one stream are therefore serialized and in send order;
//    calls for different streams run concurrently. A slow on_pipeline slows only that
//    stream (gRPC flow control then makes the sender's queue fill up).
//  - Unary calls (heartbeat, assign, abort, join, cluster) run on gRPC threads, concurrently
//    with each other and with on_pipeline. The handler must be thread-safe.
//  - A handler that throws never takes the server down: a pipeline frame is then dropped and
//    acknowledged with the error; a unary call fails with INTERNAL and the exception's text.
//    Input that fails validation never reaches the handler (frames: dropped and acked; unary
//    calls: INVALID_ARGUMENT).
//  - Handlers must return: shutdown() waits for running handler calls.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "swarm/peer_limits.h"
#include "swarm/pipeline_messages.h"

namespace grpc {
class Server;
}

namespace px::swarm {

class PeerHandler {
 public:
  virtual ~PeerHandler() = default;
  // A decoded, validated pipeline frame (see the threading rules above).
  virtual void on_pipeline(PipelineMessage message) = 0;
  // A peer's heartbeat; returns this node's own announcement.
  virtual NodeAnnouncement on_heartbeat(const NodeAnnouncement& from) = 0;
  virtual AssignReply on_assign(const Assignment& assignment) = 0;
  virtual void on_abort(RequestId request) = 0;
  virtual JoinReplyData on_join(const NodeAnnouncement& node) = 0;
  // The swarm as this node sees it, as JSON text.
  virtual std::string on_cluster() = 0;
  // A signed revocation list passed on by a peer (private swarms).
  virtual RevocationReplyData on_revocations(const std::string& list) {
    return {false, "this node is not in a private swarm"};
  }
  // Addresses of node `node_id` this node failed to reach, told to it in the heartbeat reply
  // (how a node learns that its announced address does not work).
  virtual std::vector<std::string> unreachable_at(const std::string& node_id) { return {}; }
};

class PeerTls;
class RelayHub;

// What this node relays for nodes attached to it (swarm/relay_hub.h).
struct RelayHubOptions {
  double shared_bytes_per_second = 0;   // the cap on frames from other nodes; 0: none
  size_t max_queued_frames = 512;       // per attached node
  size_t max_attached = 256;
  // How long a node id stays bound to the peer that attached under it after its stream ends:
  // another peer cannot take the id over (and the frames sent to it) meanwhile.
  std::chrono::milliseconds binding_memory{60000};
};

struct PeerServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;                                      // 0: an ephemeral port, see PeerServer::port()
  int max_message_bytes = kDefaultMaxMessageBytes;
  int max_threads = 128;                             // gRPC threads; each open Pipeline stream holds one
  std::chrono::milliseconds shutdown_grace{2000};    // how long unary calls may finish on shutdown
  // Private swarms: mutual TLS, and every call's peer checked against the revocation list.
  // Null: plaintext, anyone who reaches the port may call.
  std::shared_ptr<const PeerTls> tls;
  // Nodes that accept no connections attach to this one (swarm/relay_hub.h).
  RelayHubOptions relay;
};

class PeerServer {
 public:
  // Starts serving at once. `handler` must outlive the server. Throws px::Error when the
  // address cannot be bound (taken port, bad host).
  PeerServer(PeerHandler& handler, PeerServerOptions options = {});
  ~PeerServer();  // shutdown()
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  // host:port as bound ("[::1]:5000" for IPv6 hosts).
  std::string address() const;

  // Ends every open Pipeline stream now (their senders see the break and reconnect elsewhere
  // or later), lets unary calls finish within shutdown_grace and then cancels them, and
  // returns once no handler call is running. Idempotent and thread-safe.
  void shutdown();

  // Ends the open Pipeline streams whose peer's credential no longer passes (after a revocation);
  // returns how many. Their calls from then on are refused too.
  size_t drop_refused_streams();

  // The nodes attached here and what waits to go to them.
  RelayHub& relay_hub();

 private:
  class Service;

  PeerServerOptions options_;
  int port_ = 0;
  std::mutex shutdown_mutex_;
  std::unique_ptr<Service> service_;     // declared before server_: outlives it
  std::unique_ptr<grpc::Server> server_;
};

// "host:port", bracketing IPv6 hosts.
std::string join_host_port(const std::string& host, int port);

}  // namespace px::swarm
