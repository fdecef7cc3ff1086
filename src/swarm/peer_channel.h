#pragma once
// The gRPC settings both ends of the peer service share (kept in one place so client pings and
// server ping policy cannot drift apart), and how a failed call reads in messages.
#include <grpcpp/channel.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace px::swarm {

class PeerTls;

struct PeerChannelOptions {
  int max_message_bytes = 0;
  // Ceiling of gRPC's own reconnect backoff, so a restarted peer is found again soon.
  std::chrono::milliseconds max_reconnect_backoff{2000};
  std::shared_ptr<const PeerTls> tls;  // private swarms: mutual TLS; null: plaintext
};

// A channel of its own to `address` (host:port): every PeerLink and PeerClient gets a separate
// connection, so heartbeats (RTT measurements) never queue behind a stream's bulk hidden states.
std::shared_ptr<grpc::Channel> open_peer_channel(const std::string& address, const PeerChannelOptions& options);

// Connects `channel` if needed and waits until it is ready (true) or fails (false): a refused
// connection fails at once, only a silent address takes `timeout`. Polls in short slices, so
// `give_up` (a closing link) ends the wait within ~50 ms.
bool wait_channel_ready(grpc::Channel& channel, std::chrono::milliseconds timeout, const std::function<bool()>& give_up);

// Sends gRPC's own log through spdlog (once per process), its handshake noise at debug level.
void route_grpc_logs();

// Message limits and the keepalive policy the clients' pings need.
void configure_peer_server(grpc::ServerBuilder& builder, int max_message_bytes);

// "UNAVAILABLE: failed to connect to all addresses" (the code's name, then gRPC's message).
std::string describe_status(const grpc::Status& status);

}  // namespace px::swarm
