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

#include "swarm/pipeline_messages.h"
#include "swarm/routing.h"

namespace px::swarm {

struct ClusterViewConfig {
  std::string model_id;                               // peers serving another model are ignored
  int n_layers = 0;
  std::chrono::milliseconds expire_after{5000};       // a peer not heard from for this long is gone
  int max_running_per_stage = 16;                     // in-flight requests that saturate a stage
};

// A chosen pipeline: the peers in layer order.
struct ChosenRoute {
  std::vector<NodeAnnouncement> stages;
  double cost_seconds = 0;
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

  // The cheapest chain of ready stages covering every layer, counting what this node already
  // has in flight on each and the round trips from this node to the first stage and from the
  // last one back; nullopt when none covers the model. Equal replicas share the traffic: a
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
  };
  struct RecentRoute {
    RequestId request;
    std::vector<std::string> node_ids;
    std::chrono::system_clock::time_point at;
  };
  bool is_live(const Peer& peer, std::chrono::steady_clock::time_point now) const;

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
};

// Ready stages and their costs, for routing; exposed for tests.
std::vector<StageState> stage_states(const std::vector<NodeAnnouncement>& nodes);

// The nodes among `nodes` that are ready and hold layers.
std::vector<NodeAnnouncement> ready_stages(const std::vector<NodeAnnouncement>& nodes);
// The cheapest chain of `ready` stages covering n_layers as it would be with no load and no
// network (whether the swarm covers the model at all, and its pipelines); indices into `ready`.
std::optional<Route> unloaded_route(const std::vector<NodeAnnouncement>& ready, int n_layers);

}  // namespace px::swarm
