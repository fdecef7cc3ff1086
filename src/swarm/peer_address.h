#pragma once
// Where a peer is reached. Either "host:port" (it accepts connections there) or
// "<node id>@host:port": through the node at host:port, to which the peer keeps an Attach
// stream open because it accepts no connections itself (--no-inbound, behind NAT). A sender
// dials host:port and names the node it means (gRPC metadata px-relay-to); the node there
// passes the frames and calls down the attach stream. When the sender *is* that node, nothing
// crosses the network twice: it writes to the attach stream itself (a reverse link).
#include <string>
#include <string_view>
#include <vector>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

struct PeerAddress {
  std::string dial;       // host:port to connect to
  std::string relay_to;   // the node id the node at `dial` forwards to; empty: `dial` is the peer
};

// The gRPC metadata key naming the node a relayed stream or call is for.
inline constexpr const char* kRelayToMetadata = "px-relay-to";

// Parses either form. Throws px::Error naming the text when it is neither (a node id must be
// 16 lowercase hex digits; host:port as parse_host_port takes it).
PeerAddress parse_peer_address(std::string_view text);
// "<node_id>@<relay>".
std::string relayed_address(const std::string& node_id, const std::string& relay);
// The node id a relayed address is for; "" for a direct one (or text that is no address).
std::string relay_target(const std::string& address);
// host:port to connect to; the text itself when it does not parse.
std::string dial_address(const std::string& address);
bool is_node_id(std::string_view text);
// A gRPC peer string without its port ("ipv4:10.0.0.1:5000" -> "ipv4:10.0.0.1",
// "ipv6:[::1]:5000" -> "ipv6:[::1]"): who a caller is in a swarm without credentials.
std::string peer_host(std::string_view grpc_peer);

// Every address a node announces, preferred first: `addresses`, or `address` alone for a node
// that lists none.
std::vector<std::string> announced_addresses(const NodeAnnouncement& node);

}  // namespace px::swarm
