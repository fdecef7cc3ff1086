#include "swarm/live_nodes.h"

#include <tuple>

namespace px::swarm {
namespace {

constexpr std::string_view kLeaving = "leaving";

// Every field but the sequence number, which changes with each re-publication.
auto content(const NodeAnnouncement& a) {
  return std::tie(a.node_id, a.address, a.api_address, a.model_id, a.n_layers, a.layer_begin, a.layer_end, a.state,
                  a.scheduler, a.layers_per_second, a.memory_bandwidth, a.free_memory, a.load, a.free_kv_tokens);
}

}  // namespace

LiveNodeTable::LiveNodeTable(Clock::duration expire_after, size_t max_nodes)
    : expire_after_(expire_after), max_nodes_(max_nodes) {}

bool LiveNodeTable::is_live(const Heard& heard, Clock::time_point now) const {
  return heard.announcement.state != kLeaving && now - heard.at < expire_after_;
}

LiveNodeTable::Update LiveNodeTable::update(const NodeAnnouncement& announcement, Clock::time_point now) {
  const Heard heard{announcement, now};
  const auto it = nodes_.find(announcement.node_id);
  if (it == nodes_.end()) {
    if (nodes_.size() >= max_nodes_) return Update::Full;
    nodes_.emplace(announcement.node_id, heard);
    return is_live(heard, now) ? Update::Changed : Update::Unchanged;
  }
  // The DHT delivers a value once per path and late copies of older ones; only a newer sequence
  // says the node spoke again. (A leaving entry is kept until it expires for the same reason:
  // a late older announcement must not bring the node back.)
  if (announcement.sequence <= it->second.announcement.sequence) return Update::Ignored;
  const bool was_live = is_live(it->second, now);
  const bool same = content(it->second.announcement) == content(announcement);
  it->second = heard;
  const bool now_live = is_live(heard, now);
  return was_live != now_live || (now_live && !same) ? Update::Changed : Update::Unchanged;
}

bool LiveNodeTable::expire(Clock::time_point now) {
  bool lost_live = false;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (now - it->second.at >= expire_after_) {
      lost_live = lost_live || it->second.announcement.state != kLeaving;
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return lost_live;
}

std::vector<NodeAnnouncement> LiveNodeTable::live(Clock::time_point now) const {
  std::vector<NodeAnnouncement> out;
  for (const auto& [id, heard] : nodes_)
    if (is_live(heard, now)) out.push_back(heard.announcement);
  return out;
}

std::optional<LiveNodeTable::Clock::time_point> LiveNodeTable::next_expiry() const {
  std::optional<Clock::time_point> next;
  for (const auto& [id, heard] : nodes_)
    if (!next || heard.at + expire_after_ < *next) next = heard.at + expire_after_;
  return next;
}

}  // namespace px::swarm
