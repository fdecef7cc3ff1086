// SwarmNode: measuring its links. Every peer it hears of is probed at once and then every
// probe_every: a padded heartbeat between two plain ones on the same connection; the padded
// one's round trip less the quicker plain one's is the padding's time on the link (the first
// plain one may still be connecting). The padding is 16 KiB first, and probe_bytes only when
// the link would carry that within kMaxProbeSeconds: a probe holds the link (and the
// heartbeats queued behind it on the connection) for a fraction of a heartbeat's deadline even
// on a slow uplink. The rates go into this node's
// announcement (NodeAnnouncement::links), where routing (cluster_view.cpp) and the layer
// scheduler (layer_scheduler.cpp) read them.
//
// The estimate is what one probe achieves: on a link of long round trips, TCP's slow start can
// hold a 128 KiB probe below the link's rate, the more so the faster the link, so rates are
// compared between links of similar round trips best.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "swarm/cluster_view.h"
#include "swarm/link_costs.h"
#include "swarm/peer_client.h"
#include "swarm/swarm_node.h"

namespace px::swarm {
namespace {

// The fastest rate a probe is credited with: the padding's time is a difference of two round
// trips, which on loopback is noise.
constexpr double kMinTransferSeconds = 1e-4;
constexpr size_t kFirstProbeBytes = 16 << 10;
constexpr double kMaxProbeSeconds = 0.2;

// The rate `peer` is reached at through `c` (bytes per second); throws px::Error when a call fails.
double probe_rate(PeerClient& c, const NodeAnnouncement& self, size_t probe_bytes, std::chrono::milliseconds timeout) {
  const double before = c.heartbeat(self, timeout).rtt_seconds;
  size_t bytes = std::min(kFirstProbeBytes, probe_bytes);
  double padded = c.probe(self, bytes, 4 * timeout).rtt_seconds;
  double plain = std::min(before, c.heartbeat(self, timeout).rtt_seconds);
  double rate = double(bytes) / std::max(padded - plain, kMinTransferSeconds);
  if (probe_bytes > bytes && double(probe_bytes) / rate < kMaxProbeSeconds) {
    // Fast enough for the full probe, whose time is measured less noisily.
    bytes = probe_bytes;
    padded = c.probe(self, bytes, 4 * timeout).rtt_seconds;
    plain = std::min(plain, c.heartbeat(self, timeout).rtt_seconds);
    rate = double(bytes) / std::max(padded - plain, kMinTransferSeconds);
  }
  return rate;
}

}  // namespace

void SwarmNode::probe_loop() {
  std::unique_lock lock(loop_mutex_);
  while (!stopping_) {
    loop_wake_.wait_for(lock, config_.heartbeat_period);
    if (stopping_ || config_.probe_bytes == 0) continue;
    lock.unlock();
    // A peer not measured yet (its probes failed: not reachable yet, busy) is tried again soon.
    for (const NodeAnnouncement& peer : view_->probe_due(config_.probe_every, 4 * config_.heartbeat_period)) {
      const std::string target = view_->address_from(peer, id_);
      double rate = 0;
      if (!target.empty()) {
        try {
          rate = probe_rate(*client(target), announcement(), config_.probe_bytes, config_.heartbeat_timeout);
          spdlog::debug("link to {} at {}: {:.1f} Mbit/s", peer.node_id, target, rate * 8e-6);
        } catch (const Error& e) {
          spdlog::debug("probing the link to {} at {} failed: {}", peer.node_id, target, e.what());
        }
      }
      view_->record_probe(peer.node_id, rate);
      std::lock_guard stop(loop_mutex_);
      if (stopping_) break;
    }
    lock.lock();
  }
}

bool SwarmNode::waiting_for_links(const std::vector<NodeAnnouncement>& nodes) {
  // Only the first allocation over several nodes waits: later ones repair around ranges already
  // in service, and a node alone has no link to measure.
  size_t candidates = 0;
  bool all_measured = true;
  const std::map<std::string, NodeLinkRates> rates = node_link_rates(nodes);
  for (const NodeAnnouncement& n : nodes) {
    if (n.layer_end > n.layer_begin) return false;
    if (n.state != "joining" || n.free_memory <= 0) continue;
    ++candidates;
    const auto r = rates.find(n.node_id);
    if (r == rates.end() || r->second.inbound <= 0) all_measured = false;
  }
  if (candidates < 2 || all_measured) {
    links_awaited_since_ = {};
    return false;
  }
  const auto now = std::chrono::steady_clock::now();
  if (links_awaited_since_ == std::chrono::steady_clock::time_point{}) links_awaited_since_ = now;
  return now - links_awaited_since_ < config_.link_wait;
}

}  // namespace px::swarm
