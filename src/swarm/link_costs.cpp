#include "swarm/link_costs.h"

#include <algorithm>
#include <cmath>

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
  struct Measure {
    const std::string* from;
    const std::string* to;
    double rate;
  };
  std::vector<Measure> measures;
  for (const NodeAnnouncement& n : nodes) {
    for (const LinkMeasure& link : n.links) {
      if (link.bytes_per_second > 0 && std::isfinite(link.bytes_per_second) && link.peer_id != n.node_id) {
        measures.push_back({&n.node_id, &link.peer_id, link.bytes_per_second});
      }
    }
  }
  // Per peer, the two fastest measures towards it by different senders: what the others reach
  // it at, whichever sender asks.
  struct Best {
    double rate = 0;
    const std::string* from = nullptr;
  };
  std::map<std::string, std::pair<Best, Best>> best;
  for (const Measure& m : measures) {
    auto& [first, second] = best[*m.to];
    if (first.from && *first.from == *m.from) {
      first.rate = std::max(first.rate, m.rate);
    } else if (second.from && *second.from == *m.from) {
      second.rate = std::max(second.rate, m.rate);
    } else if (m.rate > second.rate) {
      second = {m.rate, m.from};
    }
    if (second.rate > first.rate) std::swap(first, second);
  }
  std::map<std::string, NodeLinkRates> rates;
  for (const auto& [id, b] : best) rates[id].inbound = b.first.rate;
  // Whether the sender's link limited `m`: another node reaches the same peer over twice as fast.
  auto sender_limited = [&](const Measure& m) {
    const auto& [first, second] = best.at(*m.to);
    const double others = first.from && *first.from == *m.from ? second.rate : first.rate;
    return others > 2 * m.rate;
  };
  std::map<std::string, bool> limited;
  for (const Measure& m : measures) limited[*m.from] = limited[*m.from] || sender_limited(m);
  for (const Measure& m : measures) {
    if (!limited[*m.from]) continue;
    double& out = rates[*m.from].outbound;
    out = std::max(out, m.rate);
  }
  return rates;
}

}  // namespace px::swarm
