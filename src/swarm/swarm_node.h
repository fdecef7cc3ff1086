#pragma once
// A peer of the swarm: everything one `parallax run / join / serve --layers` process is.
//  - its peer service (gRPC) and its DHT presence (OpenDHT), both on host:p2p_port;
//  - its Model Shard Holder (StageHost), when it is a worker;
//  - its request head (RequestHead over a SwarmEntry), when it takes API requests;
//  - the layer scheduler, on the node that runs allocation;
//  - loops that announce itself, heartbeat its peers (liveness and RTT) and refresh its view.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_digest.h"
#include "runtime/engine.h"
#include "runtime/stage_executor.h"
#include "swarm/layer_scheduler.h"
#include "swarm/local_inbox.h"
#include "swarm/message_sender.h"
#include "swarm/peer_server.h"

namespace px {
class RequestHead;
class Tokenizer;
}  // namespace px

namespace px::swarm {

class ClusterView;
class Discovery;
class PeerClient;
class PeerLinks;
class PeerTls;
class RelayAttachment;
class ResultVerifier;
class SwarmCredentials;
class StageHost;
class SwarmEntry;

struct SwarmNodeConfig {
  std::string model_path;
  std::string host = "127.0.0.1";
  int p2p_port = 0;                         // gRPC over TCP and the DHT over UDP; 0: any free one
  // host:port peers dial to reach this node, when it differs from host:p2p_port (port
  // forwarding, containers, proxies): announced, put in routes, named as requests' head.
  // Several: preferred first.
  std::vector<std::string> advertise;
  // No listening peer service: the node attaches to reachable peers (swarm/relay_attachment.h)
  // and is reached as "<id>@<their address>". Needs `peers`.
  bool no_inbound = false;
  bool relay = false;                       // relays for attached nodes without relay_share's cap
  double relay_share_bytes_per_second = 10e6 / 8;  // what it relays for others otherwise (10 Mbit/s)
  std::vector<std::string> peers;           // host:p2p_port of nodes to join through
  bool worker = true;                       // holds layers
  std::optional<LayerRange> layers;         // a range pinned by hand instead of the scheduler's
  bool scheduler = false;                   // runs layer allocation for the swarm
  bool head = false;                        // takes requests from this node's API
  std::string api_address;                  // announced, when the node serves the API
  int threads = 0;                          // compute threads; 0: all cores
  StageConfig stage;
  double memory_bytes = 0;                  // offered for weights; 0: what the OS reports available
  int max_layers = 0;                       // > 0: offer memory for at most this many layers
  WireDType wire_dtype = WireDType::F32;
  std::chrono::milliseconds announce_period{500};
  std::chrono::milliseconds expire_after{4000};
  std::chrono::milliseconds heartbeat_period{500};
  std::chrono::milliseconds heartbeat_timeout{1000};
  int heartbeat_failures = 2;               // consecutive misses before a peer counts as failed
  // Link probes (swarm_node_links.cpp): a padded heartbeat (up to probe_bytes) to every peer,
  // when first heard and then every probe_every, gives the rate each link carries.
  size_t probe_bytes = 128 << 10;
  std::chrono::milliseconds probe_every{60000};
  // The scheduler's first allocation over several nodes waits up to this long for their links
  // to be measured, so that no stage lands behind a slow one unseen.
  std::chrono::milliseconds link_wait{3000};
  std::chrono::milliseconds route_wait{30000};
  int max_attempts = 5;                     // a request's opens, across failures of its pipelines
  std::chrono::milliseconds progress_timeout{0};  // the head's progress watchdog (HeadConfig); 0: off
  int wait_nodes = 1;                       // scheduler: assignable nodes before the first allocation
  int max_queue = 256;
  // A private swarm's membership: mutual TLS on every peer link, signed DHT announcements,
  // revocations. Null: a local swarm (loopback only) or, with open_swarm, anyone may join.
  std::shared_ptr<SwarmCredentials> credentials;
  bool open_swarm = false;                  // allows binding beyond loopback without credentials
  // A head's verification of results (swarm/result_verifier.h): the share of its completed
  // requests it replays through another route. 0: none.
  double verify_rate = 0;
  // --verify full: every request runs on two disjoint routes; a token passes only when both
  // sampled it, and the head decides when they differ (swarm/swarm_entry.h).
  bool verify_full = false;
  // A test aid (runtime/stage_fault.h): the worker computes with this file instead of the model.
  std::string fault_model_path;
};

class SwarmNode : private PeerHandler, private MessageSender {
 public:
  // Starts the node: binds its ports, joins through `peers`, starts its loops. Throws px::Error
  // for a model it cannot open or ports it cannot bind.
  explicit SwarmNode(SwarmNodeConfig config);
  ~SwarmNode() override;

  const std::string& id() const { return id_; }
  std::string address() const;          // where peers reach it: addresses().front()
  // Every address it announces, preferred first: --advertise's, else what it binds; with
  // --no-inbound "<id>@<relay>" for each node it is attached to.
  std::vector<std::string> addresses() const;
  // The addresses it accepts connections at itself (none with --no-inbound).
  std::vector<std::string> direct_addresses() const;
  std::string listen_address() const;   // what it binds (host:p2p_port); "none" with --no-inbound
  // The request head (null unless config.head).
  std::shared_ptr<Engine> engine() const;
  std::string cluster_json() const;
  std::optional<LayerRange> layers() const;

  // Graceful exit: announce "draining" (no new routes through this node), wait up to `grace`
  // for the requests passing through to finish, then announce "leaving" and stop.
  void leave(std::chrono::milliseconds grace);

 private:
  // PeerHandler (gRPC threads)
  void on_pipeline(PipelineMessage message) override;
  NodeAnnouncement on_heartbeat(const NodeAnnouncement& from) override;
  AssignReply on_assign(const Assignment& assignment) override;
  void on_abort(RequestId request) override;
  JoinReplyData on_join(const NodeAnnouncement& node) override;
  std::string on_cluster() override;
  RevocationReplyData on_revocations(const std::string& list) override;
  std::vector<std::string> unreachable_at(const std::string& node_id) override;
  // MessageSender
  bool send(const std::string& address, PipelineMessage message) override;

  NodeAnnouncement announcement() const;
  void announce();
  void refresh_from_dht();
  void heartbeat_loop();
  // Probes the links to peers that are due (swarm_node_links.cpp).
  void probe_loop();
  // Whether the first allocation should wait for the links of `nodes` to be measured.
  bool waiting_for_links(const std::vector<NodeAnnouncement>& nodes);
  void scheduler_loop();
  void load_loop();  // loads assigned shards, newest assignment first
  // The deterministic rule for who runs allocation (see the .cpp).
  bool should_schedule(const std::vector<NodeAnnouncement>& nodes) const;
  void peer_failed(const std::string& node_id);
  // Closes the link and client to `address` (a peer gone from there).
  void forget_address(const std::string& address);
  // Heartbeats to `peer` at `address` failed: dead, or alive (its own heartbeats still arrive)
  // at an address this node cannot reach (swarm_node_reach.cpp).
  void heartbeat_failed(const NodeAnnouncement& peer, const std::string& address, const std::string& error);
  // A peer said which of this node's addresses it cannot reach.
  void reported_unreachable(const std::string& by, const std::vector<std::string>& addresses);
  // --no-inbound: keeps an attach stream open to the reachable peers it needs (swarm_node_reach.cpp).
  void update_attachments();
  // A message for a node attached to this one, written to its attach stream; nullopt when
  // `address` is not "<id>@<this node>".
  std::optional<bool> send_to_attached(const std::string& address, PipelineMessage& message);
  nlohmann::json reach_json() const;
  // Private swarms (swarm_node_revocation.cpp): drops peers whose credential was revoked and
  // passes a newly adopted list on to every live peer. Heartbeat thread.
  void apply_revocations();
  void set_state(const std::string& state);
  // Sets the state, announces it and heartbeats it to every live peer at once.
  void tell_peers_state(const std::string& state);
  std::shared_ptr<PeerClient> client(const std::string& address);  // one connection per peer

  SwarmNodeConfig config_;
  std::string id_;
  ModelDigest model_digest_;  // the model's SHA-256 identity, part by part
  std::string model_id_;       // model_digest_.id
  int n_layers_ = 0;
  double layer_bytes_ = 0;
  double memory_bandwidth_ = 0;
  double layers_per_second_ = 0;
  double free_memory_ = 0;

  std::shared_ptr<const PeerTls> tls_;    // null: plaintext
  std::unique_ptr<PeerServer> server_;
  std::string self_address_;              // address(), fixed once the port is bound
  std::unique_ptr<LocalInbox> local_;     // messages to itself
  std::unique_ptr<PeerLinks> links_;
  std::unique_ptr<ClusterView> view_;
  std::unique_ptr<StageHost> stage_;
  std::shared_ptr<RequestHead> head_;
  std::unique_ptr<ResultVerifier> verifier_;  // heads of open swarms
  std::unique_ptr<SwarmEntry> entry_;
  std::unique_ptr<Discovery> discovery_;

  mutable std::mutex state_mutex_;
  std::string state_ = "joining";
  mutable std::atomic<uint64_t> sequence_{0};
  uint64_t assignment_epoch_ = 0;  // the newest seen (as a node) or sent (as the scheduler)
  std::atomic<bool> acting_scheduler_{false};

  // Scheduler bookkeeping.
  std::set<std::string> fixed_nodes_;                 // refused assignments: pinned by hand
  std::map<std::string, std::pair<LayerRange, std::chrono::steady_clock::time_point>> pending_;

  std::mutex loop_mutex_;
  std::condition_variable loop_wake_;
  bool stopping_ = false;
  std::atomic<bool> heartbeat_now_{false};
  std::atomic<bool> revocations_changed_{false};    // a newer list was adopted: apply and pass on
  std::set<std::string> revocation_pending_;        // peers not told yet (heartbeat thread)
  std::vector<NodeAnnouncement> introductions_;     // joiners to announce to the others (loop_mutex_)
  struct Misses {
    int count = 0;
    std::chrono::steady_clock::time_point first;  // of this run of misses
  };
  std::map<std::string, Misses> missed_heartbeats_;  // heartbeat thread
  size_t heartbeat_round_ = 0;
  std::chrono::steady_clock::time_point links_awaited_since_{};  // scheduler thread; epoch: not waiting
  // Peers declared failed, by id: the address and when (heartbeat thread). One heard from again
  // after that, and failing at the same address again, is alive and unreachable there.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> declared_failed_;
  mutable std::mutex reach_mutex_;
  std::map<std::string, std::unique_ptr<RelayAttachment>> attachments_;  // by relay address
  std::map<std::string, std::vector<std::string>> reported_unreachable_;   // peer id -> this node's addresses
  // A peer could not reach an address this node announces: it attaches to reachable peers as a
  // --no-inbound node does (keeping its socket), so it is reached through them.
  std::atomic<bool> attach_fallback_{false};
  bool attaching() const { return config_.no_inbound || attach_fallback_; }
  std::mutex load_mutex_;
  std::condition_variable load_wake_;
  std::optional<LayerRange> next_load_;             // an assignment not loaded yet (load_mutex_)
  bool load_stopping_ = false;
  std::mutex clients_mutex_;
  std::map<std::string, std::shared_ptr<PeerClient>> clients_;
  std::vector<std::thread> threads_;
};

}  // namespace px::swarm
