#pragma once
// Link figures for routing and allocation, read from what nodes announce: each lists what it
// measured towards its peers (NodeAnnouncement::links: heartbeat round trips, probe rates).
// A link carries at most what its slower end's access link allows, so the fastest rate
// measured towards a node (or from it) is the best estimate of its own link in that direction,
// and a link one node did not measure is judged by that. Pure functions.
#include <map>
#include <string>
#include <vector>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

// What `from` announced about its link to `to_id`; null when it lists none.
const LinkMeasure* announced_link(const NodeAnnouncement& from, const std::string& to_id);

// The rates a node's links carry, as the swarm measured them (bytes per second; 0: unknown).
struct NodeLinkRates {
  double inbound = 0;    // the fastest any peer measured towards it
  double outbound = 0;   // the fastest it measured towards a peer
  // A stage inside a pipeline receives hidden states and sends them on: the slower direction.
  double stage() const;
};

// Per node id, for every node some measurement names.
std::map<std::string, NodeLinkRates> node_link_rates(const std::vector<NodeAnnouncement>& nodes);

}  // namespace px::swarm
