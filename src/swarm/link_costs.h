#pragma once
// Link figures for routing and allocation, read from what nodes announce: each lists what it
// measured towards its peers (NodeAnnouncement::links: heartbeat round trips, probe rates).
// A link carries at most what its slower end's access link allows: the fastest rate measured
// towards a node is the best estimate of its downlink, and a link one node did not measure is
// judged by that. What a node measured towards a peer tells of its own uplink only when others
// reach that peer faster: a node that has probed only a slow peer is not slow itself. Pure
// functions.
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
  // The fastest it measured towards a peer, once some measure shows its own link as the limit
  // (others reach that peer at over twice the rate); 0 until then.
  double outbound = 0;
  // A stage inside a pipeline receives hidden states and sends them on: the slower direction.
  double stage() const;
};

// Per node id, for every node some measurement names.
std::map<std::string, NodeLinkRates> node_link_rates(const std::vector<NodeAnnouncement>& nodes);

}  // namespace px::swarm
