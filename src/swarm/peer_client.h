#pragma once
// The calling side of the peer service's unary control RPCs, towards one peer. Every call
// takes a deadline and either returns the peer's (validated) answer or throws px::Error whose
// message names the call and the peer's address. Thread-safe; the connection is made on the
// first call and reused, so after the first heartbeat the round-trip time excludes connecting.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "swarm/peer_limits.h"
#include "swarm/pipeline_messages.h"

namespace px::swarm {

class PeerTls;

struct HeartbeatResult {
  NodeAnnouncement node;              // the peer's announcement
  int64_t received_unix_micros = 0;   // the peer's wall clock when the heartbeat arrived
  double rtt_seconds = 0;             // measured here, on a monotonic clock
  std::vector<std::string> unreachable;  // addresses of this node the peer failed to reach
};

class PeerClient {
 public:
  // `address`: host:port, or <node id>@host:port (through the node there; swarm/peer_address.h).
  // `tls` null: plaintext (an open or local swarm).
  explicit PeerClient(std::string address, std::shared_ptr<const PeerTls> tls = nullptr,
                      int max_message_bytes = kDefaultMaxMessageBytes);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  const std::string& address() const;

  HeartbeatResult heartbeat(const NodeAnnouncement& self, std::chrono::milliseconds timeout);
  // A heartbeat carrying `padding_bytes` (at most wire::kMaxProbeBytes) that the peer ignores:
  // the round trip, for the rate the link carries it at (swarm_node_links.cpp).
  HeartbeatResult probe(const NodeAnnouncement& self, size_t padding_bytes, std::chrono::milliseconds timeout);
  AssignReply assign(const Assignment& assignment, std::chrono::milliseconds timeout);
  void abort(RequestId request, std::chrono::milliseconds timeout);
  JoinReplyData join(const NodeAnnouncement& self, std::chrono::milliseconds timeout);
  // The peer's view of the swarm, as JSON text.
  std::string cluster(std::chrono::milliseconds timeout);
  // Passes on a signed revocation list.
  RevocationReplyData revoke(const std::string& list, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace px::swarm
