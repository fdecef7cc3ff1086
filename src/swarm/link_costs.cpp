#include "swarm/link_costs.h"

#include <algorithm>

namespace px::swarm {
const LinkMeasure* announced_link(const NodeAnnouncement& from, const std::string& to_id) {
  for (const LinkMeasure& link : from.links) {
    if (link.peer_id == to_id) return &link;
  }
  return nullptr;
}

double NodeLinkRates::stage() const {
  if (inbound > 0 && outbound > 0) return std::min(inbound, outbound);
  return std::max(inbound, outbound);
}

std::map<std::string, NodeLinkRates> node_link_rates(const std::vector<NodeAnnouncement>& nodes) {
  std::map<std::string, NodeLinkRates> rates;
  for (const NodeAnnouncement& n : nodes) {
    for (const LinkMeasure& link : n.links) {
      if (!(link.bytes_per_second > 0) || link.peer_id == n.node_id) continue;
      double& in = rates[link.peer_id].inbound;
      double& out = rates[n.node_id].outbound;
      in = std::max(in, link.bytes_per_second);
      out = std::max(out, link.bytes_per_second);
    }
  }
  return rates;
}

}  // namespace px::swarm
