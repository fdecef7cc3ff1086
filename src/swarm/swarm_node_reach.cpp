// SwarmNode: how peers reach it and it them — its addresses, the attach streams of a node that
// accepts no connections (--no-inbound), frames for nodes attached to it, and addresses found
// unreachable (either way).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "swarm/cluster_view.h"
#include "swarm/peer_address.h"
#include "swarm/relay_attachment.h"
#include "swarm/relay_hub.h"
#include "swarm/swarm_entry.h"
#include "swarm/swarm_node.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

// Attach streams a --no-inbound node keeps: every --relay node and the others up to this many.
constexpr size_t kMaxAttachments = 8;

}  // namespace

std::vector<std::string> SwarmNode::direct_addresses() const {
  if (config_.no_inbound) return {};
  return config_.advertise.empty() ? std::vector<std::string>{listen_address()} : config_.advertise;
}

std::vector<std::string> SwarmNode::addresses() const {
  std::vector<std::string> out = direct_addresses();
  if (!attaching()) return out;
  std::vector<std::string> relays;
  {
    std::lock_guard lock(reach_mutex_);
    for (const auto& [relay, attachment] : attachments_) {
      if (attachment->attached()) relays.push_back(relay);
    }
  }
  // Through a --relay node first: a sender that is not among this node's relays goes there.
  if (view_) {
    std::stable_sort(relays.begin(), relays.end(), [&](const std::string& a, const std::string& b) {
      const std::optional<NodeAnnouncement> na = view_->find_by_address(a), nb = view_->find_by_address(b);
      return (na && na->relay) > (nb && nb->relay);
    });
  }
  for (const std::string& relay : relays) {
    if (out.size() == wire::kMaxAnnouncedAddresses) break;
    out.push_back(relayed_address(id_, relay));
  }
  // Before the first stream is up: through the node it joins through, which it dials first.
  if (out.empty()) out.push_back(relayed_address(id_, config_.peers.front()));
  return out;
}

void SwarmNode::update_attachments() {
  std::vector<std::string> wanted;
  if (view_) {
    std::vector<NodeAnnouncement> peers = view_->live();
    std::stable_sort(peers.begin(), peers.end(), [](const auto& a, const auto& b) { return a.relay > b.relay; });
    for (const NodeAnnouncement& peer : peers) {
      if (peer.node_id == id_ || wanted.size() == kMaxAttachments) continue;
      const std::vector<std::string> unreachable = view_->unreachable_addresses(peer.node_id);
      for (const std::string& a : announced_addresses(peer)) {
        if (!relay_target(a).empty() || std::count(unreachable.begin(), unreachable.end(), a)) continue;
        wanted.push_back(a);  // its first direct address that works
        break;
      }
    }
  }
  if (wanted.empty()) wanted = config_.peers;  // no one known yet: the nodes it joins through
  std::vector<std::unique_ptr<RelayAttachment>> closing;
  bool first = false;
  {
    std::lock_guard lock(reach_mutex_);
    first = attachments_.empty();
    for (auto it = attachments_.begin(); it != attachments_.end();) {
      if (std::count(wanted.begin(), wanted.end(), it->first)) {
        ++it;
        continue;
      }
      closing.push_back(std::move(it->second));
      it = attachments_.erase(it);
    }
    for (const std::string& relay : wanted) {
      if (attachments_.count(relay)) continue;
      RelayAttachmentOptions options;
      options.tls = tls_;
      attachments_.emplace(relay, std::make_unique<RelayAttachment>(relay, id_, static_cast<PeerHandler&>(*this), options));
    }
  }
  closing.clear();  // outside the lock: closing joins the stream's thread
  if (!first || !config_.no_inbound) return;
  // The first time: peers are told of this node only once one relay passes its traffic.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(reach_mutex_);
      if (std::any_of(attachments_.begin(), attachments_.end(), [](const auto& a) { return a.second->attached(); })) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  spdlog::warn("no attach stream is up yet (to {}): peers cannot reach this node until one is", fmt::join(wanted, ", "));
}

void SwarmNode::heartbeat_failed(const NodeAnnouncement& peer, const std::string& address, const std::string& error) {
  const auto first_miss = missed_heartbeats_[peer.node_id].first;
  missed_heartbeats_.erase(peer.node_id);
  const auto heard = view_->heard_directly(peer.node_id);
  const auto before = declared_failed_.find(peer.node_id);
  // Alive: its own heartbeats arrived since the first miss, or it came back after it was
  // declared failed at this address (a dead process never comes back under its id).
  const bool alive = heard > first_miss || (before != declared_failed_.end() && before->second.first == address &&
                                            heard > before->second.second);
  if (!alive) {
    spdlog::warn("peer {} at {} failed: {}", peer.node_id, address, error);
    if (declared_failed_.size() >= 1024) declared_failed_.clear();
    declared_failed_[peer.node_id] = {address, std::chrono::steady_clock::now()};
    peer_failed(peer.node_id);
    return;
  }
  if (before != declared_failed_.end()) declared_failed_.erase(before);
  // Only this address fails.
  spdlog::warn("peer {} announces {} but this node cannot reach it there ({}); routing around that address "
               "(it is told in its next heartbeat's reply)",
               peer.node_id, address, error);
  view_->mark_unreachable(peer.node_id, address, error);
  if (entry_) entry_->peer_failed(peer.node_id);  // what was sent there is lost: its requests move
  forget_address(address);
}

void SwarmNode::reported_unreachable(const std::string& by, const std::vector<std::string>& addresses) {
  std::lock_guard lock(reach_mutex_);
  if (addresses.empty()) {
    reported_unreachable_.erase(by);
    return;
  }
  std::vector<std::string>& known = reported_unreachable_[by];
  if (known == addresses) return;
  known = addresses;
  spdlog::warn("peer {} cannot reach this node at {}: check --advertise and the port forward (or run --no-inbound)",
               by, fmt::join(addresses, ", "));
  if (!config_.no_inbound && !attach_fallback_.exchange(true)) {
    spdlog::warn("attaching to reachable peers: peers that cannot reach this node's addresses reach it through them");
  }
}

std::vector<std::string> SwarmNode::unreachable_at(const std::string& node_id) {
  return view_->unreachable_addresses(node_id);
}

std::optional<bool> SwarmNode::send_to_attached(const std::string& address, PipelineMessage& message) {
  if (!server_) return std::nullopt;
  const std::string to = relay_target(address);
  if (to.empty()) return std::nullopt;
  // "<id>@<one of this node's own addresses>": a relayed address always names a direct one.
  const std::vector<std::string> own = direct_addresses();
  if (std::find(own.begin(), own.end(), dial_address(address)) == own.end()) return std::nullopt;
  v1::PipelineFrame frame;
  try {
    wire::encode(message, config_.wire_dtype, frame);
  } catch (const std::exception& e) {
    spdlog::warn("frame to {} not sent: {}", address, e.what());
    return false;
  }
  // A reverse link: straight into the attached node's stream (full queue: back-pressure).
  return server_->relay_hub().forward(to, std::move(frame), /*shared=*/false, std::chrono::milliseconds(0));
}

nlohmann::json SwarmNode::reach_json() const {
  nlohmann::json j;
  j["addresses"] = addresses();
  j["no_inbound"] = config_.no_inbound;
  j["attaching"] = attaching();
  j["relay"] = config_.relay;
  j["attached_to"] = nlohmann::json::array();
  j["unreachable_reports"] = nlohmann::json::array();
  {
    std::lock_guard lock(reach_mutex_);
    for (const auto& [relay, a] : attachments_) j["attached_to"].push_back({{"relay", relay}, {"up", a->attached()}});
    for (const auto& [by, addresses] : reported_unreachable_) {
      j["unreachable_reports"].push_back({{"by", by}, {"addresses", addresses}});
    }
  }
  j["attached_here"] = server_ ? server_->relay_hub().attached_nodes() : std::vector<std::string>{};
  j["relayed_frames"] = server_ ? server_->relay_hub().shared_frames() : 0;
  return j;
}

}  // namespace px::swarm
