#include "swarm/peer_address.h"

#include <algorithm>

#include "core/error.h"
#include "swarm/host_port.h"

namespace px::swarm {

bool is_node_id(std::string_view text) {
  return text.size() == 16 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

PeerAddress parse_peer_address(std::string_view text) {
  const size_t at = text.find('@');
  if (at == std::string_view::npos) {
    parse_host_port(text);
    return {std::string(text), {}};
  }
  const std::string_view node = text.substr(0, at), relay = text.substr(at + 1);
  if (!is_node_id(node)) fail("address '{}': a relayed address is <16 hex digits of node id>@host:port", text.substr(0, 96));
  parse_host_port(relay);
  return {std::string(relay), std::string(node)};
}

std::string peer_host(std::string_view grpc_peer) {
  const size_t colon = grpc_peer.rfind(':');
  const bool has_port = colon != std::string_view::npos && colon + 1 < grpc_peer.size() &&
                        grpc_peer.find_first_not_of("0123456789", colon + 1) == std::string_view::npos &&
                        grpc_peer.substr(0, colon).find(':') != std::string_view::npos;  // "ipv4:" precedes
  return std::string(has_port ? grpc_peer.substr(0, colon) : grpc_peer);
}

std::string relayed_address(const std::string& node_id, const std::string& relay) { return node_id + "@" + relay; }

std::string relay_target(const std::string& address) {
  const size_t at = address.find('@');
  return at == std::string::npos ? std::string() : address.substr(0, at);
}

std::string dial_address(const std::string& address) {
  const size_t at = address.find('@');
  return at == std::string::npos ? address : address.substr(at + 1);
}

std::vector<std::string> announced_addresses(const NodeAnnouncement& node) {
  if (node.addresses.empty()) return {node.address};
  return node.addresses;
}

}  // namespace px::swarm
