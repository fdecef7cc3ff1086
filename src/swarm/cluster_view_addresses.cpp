// ClusterView: which of a peer's addresses to use, and what this node found unreachable.
#include <algorithm>

#include "swarm/cluster_view.h"
#include "swarm/peer_address.h"

namespace px::swarm {

const ClusterView::Peer* ClusterView::peer_at_locked(const std::string& address,
                                                     std::chrono::steady_clock::time_point now) const {
  for (const auto& [id, p] : peers_) {
    if (!is_live(p, now)) continue;
    const std::vector<std::string> all = announced_addresses(p.node);
    if (std::find(all.begin(), all.end(), address) != all.end()) return &p;
  }
  return nullptr;
}

std::string ClusterView::address_from_locked(const NodeAnnouncement& target, const std::string& sender_id,
                                             std::string* relay_id) const {
  const auto now = std::chrono::steady_clock::now();
  const std::vector<std::string> addresses = announced_addresses(target);
  // The sender relays for the target itself: it writes to the target's attach stream.
  if (auto sender = peers_.find(sender_id); sender != peers_.end()) {
    const std::vector<std::string> own = announced_addresses(sender->second.node);
    for (const std::string& a : addresses) {
      if (!relay_target(a).empty() && std::find(own.begin(), own.end(), dial_address(a)) != own.end()) {
        if (relay_id) *relay_id = sender_id;
        return a;
      }
    }
  }
  const auto known = peers_.find(target.node_id);
  for (const std::string& a : addresses) {
    if (known != peers_.end() && known->second.unreachable.count(a)) continue;
    if (relay_target(a).empty()) return a;
    const Peer* relay = peer_at_locked(dial_address(a), now);
    if (!relay) continue;  // its relay is gone (or not known here yet)
    if (relay_id) *relay_id = relay->node.node_id;
    return a;
  }
  return {};
}

std::string ClusterView::address_from(const NodeAnnouncement& target, const std::string& sender_id) const {
  std::lock_guard lock(mutex_);
  return address_from_locked(target, sender_id, nullptr);
}

void ClusterView::mark_unreachable(const std::string& node_id, const std::string& address, const std::string& why) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it != peers_.end()) it->second.unreachable[address] = why;
}

void ClusterView::mark_reachable(const std::string& node_id, const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it != peers_.end()) it->second.unreachable.erase(address);
}

std::vector<std::string> ClusterView::unreachable_addresses(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  auto it = peers_.find(node_id);
  if (it == peers_.end()) return out;
  for (const auto& [address, why] : it->second.unreachable) out.push_back(address);
  return out;
}

std::chrono::steady_clock::time_point ClusterView::heard_directly(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  return it == peers_.end() ? std::chrono::steady_clock::time_point{} : it->second.heard_direct;
}

}  // namespace px::swarm
