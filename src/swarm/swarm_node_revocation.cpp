// SwarmNode in a private swarm: taking in signed revocation lists and acting on them. A list
// reaches one node (`parallax swarm revoke --peer`, or a joiner's Join reply); each node that
// adopts a newer list passes it on to every live peer, so it floods the swarm within a
// heartbeat round or two. Acting on it: peers whose credential it revokes are banned from the
// view for good and failed like a crashed peer (their requests move to other routes), their
// incoming streams are cut, and new handshakes and calls from them are refused.
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "swarm/cluster_view.h"
#include "swarm/host_port.h"
#include "swarm/peer_client.h"
#include "swarm/peer_server.h"
#include "swarm/peer_tls.h"
#include "swarm/swarm_credentials.h"
#include "swarm/swarm_node.h"

namespace px::swarm {

RevocationReplyData SwarmNode::on_revocations(const std::string& list) {
  if (!config_.credentials) return {false, "this node is not in a private swarm"};
  try {
    if (!config_.credentials->adopt_revocations(list)) return {false, {}};
  } catch (const Error& e) {
    spdlog::warn("refused a revocation list: {}", e.what());
    return {false, e.what()};
  }
  spdlog::info("adopted revocation list {} of swarm {}", config_.credentials->revocation_sequence(),
               config_.credentials->swarm_id());
  if (config_.credentials->revoked(config_.credentials->self().serial)) {
    spdlog::error("this node's credential '{}' has been revoked: the swarm no longer accepts it",
                  config_.credentials->self().name);
  }
  revocations_changed_ = true;
  heartbeat_now_ = true;
  loop_wake_.notify_all();
  return {true, {}};
}

void SwarmNode::apply_revocations() {
  if (revocations_changed_.exchange(false)) {
    const size_t cut = server_->drop_refused_streams();
    if (cut > 0) spdlog::warn("cut {} pipeline streams from revoked peers", cut);
    for (const NodeAnnouncement& peer : view_->live()) {
      if (peer.node_id == id_) continue;
      const std::string serial = tls_->serial_at(peer.address);
      if (!serial.empty() && config_.credentials->revoked(serial)) {
        spdlog::warn("peer {} at {}: its credential (serial {}) has been revoked; dropping it", peer.node_id,
                     peer.address, serial);
        peer_failed(peer.node_id);
        view_->ban(peer.node_id, peer.address, std::chrono::steady_clock::time_point::max(),
                   fmt::format("credential serial {} revoked", serial));
      } else {
        revocation_pending_.insert(peer.address);
      }
    }
  }
  if (revocation_pending_.empty()) return;
  const std::string list = config_.credentials->revocations_text();
  for (auto it = revocation_pending_.begin(); it != revocation_pending_.end();) {
    try {
      client(*it)->revoke(list, config_.heartbeat_timeout);
      it = revocation_pending_.erase(it);
    } catch (const Error& e) {
      // Kept for the next round unless the peer is gone (failed peers leave the view).
      if (!view_->find_by_address(*it)) {
        it = revocation_pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace px::swarm
