#include "swarm/cluster_view.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "swarm/peer_address.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

constexpr double kUnknownRttSeconds = 0.001;
constexpr size_t kRecentRoutes = 32;
constexpr double kSaturatedPenaltySeconds = 1.0;
constexpr size_t kProbesKept = 3;
constexpr std::chrono::seconds kLinkRatesRefresh{1};

double seconds_per_token(const NodeAnnouncement& n) {
  const int layers = n.layer_end - n.layer_begin;
  // Before a node has measured itself, every layer counts as a millisecond.
  return n.layers_per_second > 0 ? layers / n.layers_per_second : layers * 1e-3;
}

// What a node announced about its links, in the units /v1/cluster shows.
nlohmann::json links_json(const NodeAnnouncement& n) {
  nlohmann::json out = nlohmann::json::array();
  for (const LinkMeasure& l : n.links) {
    out.push_back({{"peer", l.peer_id},
                   {"rtt_ms", l.rtt_seconds > 0 ? nlohmann::json(l.rtt_seconds * 1e3) : nlohmann::json(nullptr)},
                   {"mbit_per_s", l.bytes_per_second > 0 ? nlohmann::json(l.bytes_per_second * 8e-6) : nlohmann::json(nullptr)}});
  }
  return out;
}

}  // namespace

std::vector<StageState> stage_states(const std::vector<NodeAnnouncement>& nodes) {
  std::vector<StageState> stages;
  for (const NodeAnnouncement& n : nodes) {
    StageState s;
    s.node_id = n.node_id;
    s.begin = n.layer_begin;
    s.end = n.layer_end;
    s.seconds_per_token = seconds_per_token(n);
    s.load = std::clamp(n.load, 0.0, 0.95);
    s.full = n.free_kv_tokens <= 0;
    stages.push_back(s);
  }
  return stages;
}

std::vector<NodeAnnouncement> ready_stages(const std::vector<NodeAnnouncement>& nodes) {
  std::vector<NodeAnnouncement> ready;
  for (const NodeAnnouncement& n : nodes) {
    if (n.state == "ready" && n.layer_end > n.layer_begin) ready.push_back(n);
  }
  return ready;
}

std::optional<Route> unloaded_route(const std::vector<NodeAnnouncement>& ready, int n_layers) {
  std::vector<StageState> stages = stage_states(ready);
  for (StageState& s : stages) s.load = 0, s.full = false;
  RoutingConfig routing;
  routing.n_layers = n_layers;
  return find_route(stages, routing, [](const std::string&, const std::string&) { return 0.0; });
}

ClusterView::ClusterView(ClusterViewConfig config) : config_(std::move(config)) {}

bool ClusterView::is_live(const Peer& p, std::chrono::steady_clock::time_point now) const {
  return now - p.heard <= config_.expire_after && p.node.state != "leaving" && p.node.model_id == config_.model_id;
}

void ClusterView::update(const NodeAnnouncement& node, bool direct) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (auto ban = banned_.find(node.node_id); ban != banned_.end()) {
    if (now < ban->second.until) return;
    banned_.erase(ban);
  }
  if (auto gone = removed_.find(node.node_id); gone != removed_.end()) {
    // What the DHT still hands out about a removed peer is ignored until it would have expired.
    if (!direct && now - gone->second < config_.expire_after) return;
    removed_.erase(gone);
  }
  auto it = peers_.find(node.node_id);
  if (it == peers_.end()) {
    Peer fresh;
    fresh.node = node;
    fresh.heard = now;
    if (direct) fresh.heard_direct = now;
    peers_.emplace(node.node_id, std::move(fresh));
    return;
  }
  if (direct) it->second.heard_direct = now;
  if (node.sequence <= it->second.node.sequence) return;
  const NodeAnnouncement& before = it->second.node;
  // A refused route is believed again once the peer itself says where it stands, or once its
  // range or state changes (a re-published copy of the old announcement does neither).
  if (direct || node.layer_begin != before.layer_begin || node.layer_end != before.layer_end || node.state != before.state) {
    it->second.stale = false;
  }
  it->second.node = node;
  it->second.heard = now;
}

void ClusterView::mark_stale(const std::string& node_id) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it != peers_.end()) it->second.stale = true;
}

void ClusterView::ban(const std::string& node_id, const std::string& address,
                      std::chrono::steady_clock::time_point until, const std::string& reason) {
  std::lock_guard lock(mutex_);
  banned_[node_id] = Ban{address, until, reason};
  peers_.erase(node_id);
}

bool ClusterView::banned(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  const auto it = banned_.find(node_id);
  return it != banned_.end() && std::chrono::steady_clock::now() < it->second.until;
}

void ClusterView::remove(const std::string& node_id) {
  std::lock_guard lock(mutex_);
  removed_[node_id] = std::chrono::steady_clock::now();
  peers_.erase(node_id);
}

void ClusterView::set_rtt(const std::string& node_id, double seconds) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it == peers_.end()) return;
  // Smoothed: one slow heartbeat should not reroute everything.
  it->second.rtt_seconds = it->second.rtt_seconds < 0 ? seconds : 0.8 * it->second.rtt_seconds + 0.2 * seconds;
}

void ClusterView::record_probe(const std::string& node_id, double bytes_per_second) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  p.probed_at = std::chrono::steady_clock::now();
  if (!(bytes_per_second > 0) || !std::isfinite(bytes_per_second)) return;
  p.probe_rates.push_back(bytes_per_second);
  while (p.probe_rates.size() > kProbesKept) p.probe_rates.pop_front();
}

std::vector<NodeAnnouncement> ClusterView::probe_due(std::chrono::milliseconds every,
                                                     std::chrono::milliseconds retry) const {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<const Peer*> due;
  for (const auto& [id, p] : peers_) {
    const auto wait = p.probe_rates.empty() ? std::min(every, retry) : every;
    if (id != config_.self_id && is_live(p, now) && now - p.probed_at >= wait) due.push_back(&p);
  }
  std::sort(due.begin(), due.end(), [](const Peer* a, const Peer* b) { return a->probed_at < b->probed_at; });
  std::vector<NodeAnnouncement> out;
  for (const Peer* p : due) out.push_back(p->node);
  return out;
}

std::vector<LinkMeasure> ClusterView::measured_links() const {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<bool, LinkMeasure>> links;  // (holds no layers, measure): stages sort first
  for (const auto& [id, p] : peers_) {
    if (id == config_.self_id || !is_live(p, now) || !is_node_id(id)) continue;
    LinkMeasure m{id, std::max(0.0, p.rtt_seconds), 0};
    for (double rate : p.probe_rates) m.bytes_per_second = std::max(m.bytes_per_second, rate);
    if (m.rtt_seconds > 0 || m.bytes_per_second > 0) links.push_back({p.node.layer_end <= p.node.layer_begin, m});
  }
  std::stable_sort(links.begin(), links.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<LinkMeasure> out;
  for (const auto& [idle, m] : links) {
    if (out.size() == wire::kMaxAnnouncedLinks) break;
    out.push_back(m);
  }
  return out;
}

std::vector<NodeAnnouncement> ClusterView::live() const {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<NodeAnnouncement> out;
  for (const auto& [id, p] : peers_) {
    if (is_live(p, now)) out.push_back(p.node);
  }
  return out;
}

std::optional<NodeAnnouncement> ClusterView::find(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(node_id);
  if (it == peers_.end() || !is_live(it->second, std::chrono::steady_clock::now())) return std::nullopt;
  return it->second.node;
}

std::optional<NodeAnnouncement> ClusterView::find_by_address(const std::string& address) const {
  std::lock_guard lock(mutex_);
  const Peer* peer = peer_at_locked(address, std::chrono::steady_clock::now());
  return peer ? std::optional<NodeAnnouncement>(peer->node) : std::nullopt;
}

std::optional<ChosenRoute> ClusterView::choose_route(const std::vector<std::string>& avoid) const {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<NodeAnnouncement> ready;
  std::vector<int> in_flight;
  for (const auto& [id, p] : peers_) {
    if (!is_live(p, now) || p.stale || p.node.state != "ready" || p.node.layer_end <= p.node.layer_begin) continue;
    if (std::find(avoid.begin(), avoid.end(), id) != avoid.end()) continue;
    // Not one of its addresses reachable from here: its heartbeats arrive, nothing else would.
    if (id != config_.self_id && address_from_locked(p.node, config_.self_id, nullptr).empty()) continue;
    ready.push_back(p.node);
    in_flight.push_back(p.in_flight);
  }
  std::vector<StageState> stages = stage_states(ready);
  auto rtt_to = [&](const std::string& id) {
    auto it = peers_.find(id);
    return it == peers_.end() || it->second.rtt_seconds < 0 ? kUnknownRttSeconds : it->second.rtt_seconds;
  };
  for (size_t i = 0; i < stages.size(); ++i) {
    const Peer& peer = peers_.at(ready[i].node_id);
    // What this head already sent there counts before the peer's next announcement shows it.
    stages[i].load = std::min(0.95, stages[i].load + double(in_flight[i]) / config_.max_running_per_stage);
    // Saturated by this head alone: another request would wait there for a whole one to finish,
    // so a replica further away (up to a second more of round trip) takes it instead.
    if (in_flight[i] >= config_.max_running_per_stage) stages[i].seconds_per_token += kSaturatedPenaltySeconds;
    const double share = routed_total_ > 0 ? double(peer.routed) / double(routed_total_) : 0.0;
    stages[i].seconds_per_token *= 1.0 + 0.1 * share;
    // The ring's ends: this head sends to the first stage and hears back from the last.
    if (stages[i].begin == 0) stages[i].seconds_per_token += rtt_to(ready[i].node_id) / 2;
    if (stages[i].end == config_.n_layers) stages[i].seconds_per_token += rtt_to(ready[i].node_id) / 2;
  }
  RoutingConfig routing;
  routing.n_layers = config_.n_layers;
  routing.stale_after_seconds = std::chrono::duration<double>(config_.expire_after).count();
  if (now - link_rates_at_ >= kLinkRatesRefresh) {
    std::vector<NodeAnnouncement> announced;
    for (const auto& [id, p] : peers_) {
      if (is_live(p, now)) announced.push_back(p.node);
    }
    link_rates_ = node_link_rates(announced);
    link_rates_at_ = now;
  }
  auto hop = [&](const std::string& from, const std::string& to) {
    const auto sender = peers_.find(from);
    const auto receiver = peers_.find(to);
    const LinkMeasure* link = sender == peers_.end() ? nullptr : announced_link(sender->second.node, to);
    const double rtt = link && link->rtt_seconds > 0 ? link->rtt_seconds : rtt_to(to);
    double rate = link ? link->bytes_per_second : 0;
    if (!(rate > 0)) {
      const auto r = link_rates_.find(to);
      rate = r == link_rates_.end() ? 0 : r->second.inbound;
    }
    // This head's requests on the receiver share the link: a token waits behind their rows.
    const int in_flight = receiver == peers_.end() ? 0 : receiver->second.in_flight;
    const double transfer = rate > 0 ? config_.hop_bytes_per_token * (1 + in_flight) / rate : 0;
    return rtt / 2 + transfer;
  };
  const std::optional<Route> route = find_route(stages, routing, hop);
  if (!route) return std::nullopt;
  ChosenRoute chosen;
  chosen.cost_seconds = route->cost_seconds;
  // Each stage as its upstream reaches it, the head as the last stage reaches it.
  std::string upstream = config_.self_id;
  auto reach = [&](const NodeAnnouncement& target, const std::string& sender) {
    std::string relay;
    std::string address = address_from_locked(target, sender, &relay);
    if (!relay.empty() && relay != sender &&
        std::find(chosen.relay_ids.begin(), chosen.relay_ids.end(), relay) == chosen.relay_ids.end()) {
      chosen.relay_ids.push_back(relay);
    }
    return address.empty() ? target.address : address;
  };
  for (size_t i : route->stages) {
    chosen.stages.push_back(ready[i]);
    chosen.stages.back().address = reach(ready[i], upstream);
    upstream = ready[i].node_id;
  }
  if (auto self = peers_.find(config_.self_id); self != peers_.end()) chosen.head_address = reach(self->second.node, upstream);
  return chosen;
}

void ClusterView::route_started(const std::vector<std::string>& node_ids, RequestId request) {
  std::lock_guard lock(mutex_);
  for (const std::string& id : node_ids) {
    auto it = peers_.find(id);
    if (it == peers_.end()) continue;
    ++it->second.in_flight;
    ++it->second.routed;
  }
  ++routed_total_;
  recent_routes_.push_back({request, node_ids, std::chrono::system_clock::now()});
  while (recent_routes_.size() > kRecentRoutes) recent_routes_.pop_front();
}

void ClusterView::route_ended(const std::vector<std::string>& node_ids) {
  std::lock_guard lock(mutex_);
  for (const std::string& id : node_ids) {
    auto it = peers_.find(id);
    if (it != peers_.end() && it->second.in_flight > 0) --it->second.in_flight;
  }
}

nlohmann::json ClusterView::to_json() const {
  const std::vector<NodeAnnouncement> nodes = live();
  nlohmann::json out;
  out["model_id"] = config_.model_id;
  out["n_layers"] = config_.n_layers;
  out["nodes"] = nlohmann::json::array();
  for (const NodeAnnouncement& n : nodes) {
    double rtt = -1, rate = 0;
    nlohmann::json unreachable = nlohmann::json::array();
    {
      std::lock_guard lock(mutex_);
      auto it = peers_.find(n.node_id);
      if (it != peers_.end()) {
        rtt = it->second.rtt_seconds;
        for (double r : it->second.probe_rates) rate = std::max(rate, r);
        for (const auto& [address, why] : it->second.unreachable) unreachable.push_back({{"address", address}, {"error", why}});
      }
    }
    out["nodes"].push_back({{"id", n.node_id},
                            {"address", n.address},
                            {"addresses", announced_addresses(n)},
                            {"relay", n.relay},
                            {"unreachable", unreachable},
                            {"api_address", n.api_address},
                            {"layers", {n.layer_begin, n.layer_end}},
                            {"state", n.state},
                            {"scheduler", n.scheduler},
                            {"hardware",
                             {{"layers_per_second", n.layers_per_second},
                              {"memory_bandwidth", n.memory_bandwidth},
                              {"free_memory", n.free_memory}}},
                            {"load", n.load},
                            {"free_kv_tokens", n.free_kv_tokens},
                            {"rtt_ms", rtt < 0 ? nlohmann::json(nullptr) : nlohmann::json(rtt * 1e3)},
                            {"mbit_per_s", rate > 0 ? nlohmann::json(rate * 8e-6) : nlohmann::json(nullptr)},
                            {"links", links_json(n)}});
  }
  // Disjoint pipelines, cheapest first, as the router would find them with no load.
  out["pipelines"] = nlohmann::json::array();
  std::vector<NodeAnnouncement> ready = ready_stages(nodes);
  for (;;) {
    const auto route = unloaded_route(ready, config_.n_layers);
    if (!route) break;
    nlohmann::json p = nlohmann::json::array();
    std::set<size_t> used(route->stages.begin(), route->stages.end());
    for (size_t i : route->stages) p.push_back({{"id", ready[i].node_id}, {"layers", {ready[i].layer_begin, ready[i].layer_end}}});
    out["pipelines"].push_back(p);
    std::vector<NodeAnnouncement> rest;
    for (size_t i = 0; i < ready.size(); ++i) {
      if (!used.count(i)) rest.push_back(ready[i]);
    }
    ready.swap(rest);
  }
  out["routes"] = nlohmann::json::array();
  out["banned"] = nlohmann::json::array();
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, ban] : banned_) {
    if (now >= ban.until) continue;
    const bool forever = ban.until == std::chrono::steady_clock::time_point::max();
    out["banned"].push_back(
        {{"id", id},
         {"address", ban.address},
         {"reason", ban.reason},
         {"seconds_left", forever ? nlohmann::json(nullptr)
                                  : nlohmann::json(std::chrono::duration<double>(ban.until - now).count())}});
  }
  for (const RecentRoute& r : recent_routes_) {
    out["routes"].push_back({{"request", r.request},
                             {"nodes", r.node_ids},
                             {"unix_ms", std::chrono::duration_cast<std::chrono::milliseconds>(r.at.time_since_epoch()).count()}});
  }
  return out;
}

}  // namespace px::swarm
