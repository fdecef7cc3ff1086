#pragma once
// One node's picture of the swarm: the latest announcement of every peer (from the DHT and
// from heartbeats), when it was last heard, the round-trip time measured to it, and the
// requests this node has in flight through it. Routing and the layer scheduler read it; the
// API shows it (/v1/cluster). Thread-safe.
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swarm/link_costs.h"
#include "swarm/pipeline_messages.h"
#include "swarm/routing.h"

namespace px::swarm {

struct ClusterViewConfig {
  std::string model_id;                               // peers serving another model are ignored
  int n_layers = 0;
  std::chrono::milliseconds expire_after{5000};       // a peer not heard from for this long is gone
  int max_running_per_stage = 16;                     // in-flight requests that saturate a stage
  std::string self_id;                                // this node (its announcement is in the view too)
  // Hidden-state bytes one token sends from a stage to the next (its width at the wire dtype):
  // a hop's cost counts their time on the link at its measured rate. 0: rates not counted.
  double hop_bytes_per_token = 0;
};

// A chosen pipeline: the peers in layer order, each stage's `address` the one its upstream
// (this node for the first) sends to (address_from).
struct ChosenRoute {
  std::vector<NodeAnnouncement> stages;
  double cost_seconds = 0;
  std::string head_address;             // where the last stage sends tokens: this node, as it reaches it
  std::vector<std::string> relay_ids;   // the nodes that relay for the route (their failure breaks it)
};

class ClusterView {
 public:
  explicit ClusterView(ClusterViewConfig config);
  const ClusterViewConfig& config() const { return config_; }

  // A peer's announcement. Only a newer sequence number replaces (and refreshes) what is known,
  // so a stale copy lingering in the DHT never keeps a vanished peer alive. `direct`: it came
  // from the peer itself (a heartbeat), which also brings back a peer removed earlier.
  void update(const NodeAnnouncement& node, bool direct = false);
  // Forgets a peer at once (failed heartbeats): copies of its last announcement still in the
  // DHT are ignored; only a newer one (it came back) brings it back.
  void remove(const std::string& node_id);
  void set_rtt(const std::string& node_id, double seconds);
  // A bandwidth probe towards the peer crossed at `bytes_per_second` (0: it failed). The
  // fastest of the last few counts: cross traffic only ever slows a probe down.
  void record_probe(const std::string& node_id, double bytes_per_second);
  // Live peers (not this node) not probed within `every` — or within `retry`, while no probe
  // of the peer has succeeded yet — the longest unprobed first.
  std::vector<NodeAnnouncement> probe_due(std::chrono::milliseconds every, std::chrono::milliseconds retry) const;
  // What this node measured towards its peers, for its announcement: peers holding layers
  // first, at most wire::kMaxAnnouncedLinks.
  std::vector<LinkMeasure> measured_links() const;
  // A stage refused a route naming this peer with a range it does not hold (or an id no longer
  // at its address): no route goes through it until a newer announcement from it arrives.
  void mark_stale(const std::string& node_id);
  // Excludes a peer until `until` (time_point::max(): for good), whatever it announces, even
  // directly: a revoked credential, a node caught computing wrong results. Shown in to_json().
  void ban(const std::string& node_id, const std::string& address, std::chrono::steady_clock::time_point until,
           const std::string& reason);
  bool banned(const std::string& node_id) const;

  // Peers heard from within expire_after, serving this model, not leaving.
  std::vector<NodeAnnouncement> live() const;
  std::optional<NodeAnnouncement> find(const std::string& node_id) const;
  std::optional<NodeAnnouncement> find_by_address(const std::string& address) const;

  // Reaching peers (cluster_view_addresses.cpp). The address `sender_id` should send to
  // `target` at: one through the sender itself when the target is attached there (a reverse
  // link, no extra hop), else the first it announces that this node has not found unreachable
  // and whose relay (for a relayed one) is live; "" when none.
  std::string address_from(const NodeAnnouncement& target, const std::string& sender_id) const;
  // This node failed to reach `node_id` at `address` while the peer is alive (its heartbeats
  // arrive): routes and heartbeats avoid that address until a heartbeat there succeeds.
  void mark_unreachable(const std::string& node_id, const std::string& address, const std::string& why);
  void mark_reachable(const std::string& node_id, const std::string& address);
  std::vector<std::string> unreachable_addresses(const std::string& node_id) const;
  // When the peer was last heard from itself (a heartbeat it sent or answered); epoch if never.
  std::chrono::steady_clock::time_point heard_directly(const std::string& node_id) const;

  // The cheapest chain of ready stages covering every layer, counting what this node already
  // has in flight on each, the round trips from this node to the first stage and from the
  // last one back, and each hop between stages: half the round trip its sender announced (else
  // this node's to the receiver) plus hop_bytes_per_token at the link's measured rate, times
  // the requests this node has on the receiver (link_costs.h); nullopt when none covers the model. Equal replicas share the traffic: a
  // stage's cost grows (by up to 10 %) with its share of the requests routed so far.
  // `avoid`: node ids to skip.
  std::optional<ChosenRoute> choose_route(const std::vector<std::string>& avoid = {}) const;
  // Bookkeeping of this node's requests per stage (feeds the load estimate above).
  void route_started(const std::vector<std::string>& node_ids, RequestId request);
  void route_ended(const std::vector<std::string>& node_ids);

  // {"nodes": [...], "pipelines": [...], "routes": [...]}: pipelines are disjoint chains of
  // ready stages covering the model, as the router sees them.
  nlohmann::json to_json() const;

 private:
  struct Peer {
    NodeAnnouncement node;
    std::chrono::steady_clock::time_point heard;
    double rtt_seconds = -1;   // unknown until measured
    int in_flight = 0;         // this node's requests through the peer
    int64_t routed = 0;        // this node's requests ever routed through the peer
    bool stale = false;        // a stage refused a route built on this announcement
    std::chrono::steady_clock::time_point heard_direct{};
    std::map<std::string, std::string> unreachable;  // address -> why this node could not reach it
    std::deque<double> probe_rates;                   // the last few probes' bytes per second
    std::chrono::steady_clock::time_point probed_at{};  // epoch: never
  };
  struct RecentRoute {
    RequestId request;
    std::vector<std::string> node_ids;
    std::chrono::system_clock::time_point at;
  };
  bool is_live(const Peer& peer, std::chrono::steady_clock::time_point now) const;
  // address_from with mutex_ held; `relay_id` gets the relaying node's id for a relayed address.
  std::string address_from_locked(const NodeAnnouncement& target, const std::string& sender_id,
                                  std::string* relay_id) const;
  // A live peer announcing `address` among its addresses (null: none).
  const Peer* peer_at_locked(const std::string& address, std::chrono::steady_clock::time_point now) const;

  ClusterViewConfig config_;
  mutable std::mutex mutex_;
  std::map<std::string, Peer> peers_;
  int64_t routed_total_ = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> removed_;  // node id -> when
  struct Ban {
    std::string address;
    std::chrono::steady_clock::time_point until;
    std::string reason;
  };
  std::map<std::string, Ban> banned_;  // node id -> why and how long
  std::deque<RecentRoute> recent_routes_;
  // node_link_rates() of the live peers, for routing: probes change them once a minute, so
  // choose_route() recomputes them at most once a second rather than per request.
  mutable std::map<std::string, NodeLinkRates> link_rates_;
  mutable std::chrono::steady_clock::time_point link_rates_at_{};
};

// Ready stages and their costs, for routing; exposed for tests.
std::vector<StageState> stage_states(const std::vector<NodeAnnouncement>& nodes);

// The nodes among `nodes` that are ready and hold layers.
std::vector<NodeAnnouncement> ready_stages(const std::vector<NodeAnnouncement>& nodes);
// The cheapest chain of `ready` stages covering n_layers as it would be with no load and no
// network (whether the swarm covers the model at all, and its pipelines); indices into `ready`.
std::optional<Route> unloaded_route(const std::vector<NodeAnnouncement>& ready, int n_layers);

}  // namespace px::swarm
