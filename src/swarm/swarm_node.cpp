#include "swarm/swarm_node.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/bandwidth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model_digest_cache.h"
#include "runtime/loaded_model.h"
#include "runtime/request_head.h"
#include "swarm/announcement_seal.h"
#include "swarm/cluster_view.h"
#include "swarm/discovery.h"
#include "swarm/peer_address.h"
#include "swarm/peer_client.h"
#include "swarm/peer_link.h"
#include "swarm/peer_tls.h"
#include "swarm/relay_attachment.h"
#include "swarm/result_verifier.h"
#include "swarm/stage_host.h"
#include "swarm/swarm_credentials.h"
#include "swarm/swarm_entry.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

std::string hex16(uint64_t v) { return fmt::format("{:016x}", v); }

std::string random_node_id() {
  std::random_device device;
  const uint64_t v = (uint64_t(device()) << 32) ^ device() ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  return hex16(v);
}

// Memory the OS reports available, in bytes (0 when unknown).
double available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// Whether `host` binds to this machine only (names are resolved by the OS: only the usual ones).
bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace

SwarmNode::SwarmNode(SwarmNodeConfig config) : config_(std::move(config)), id_(random_node_id()) {
  if (!config_.credentials && !config_.open_swarm && !is_loopback(config_.host)) {
    fail("refusing to serve the peer port on {} without --credentials: anyone who reaches it could join the swarm, "
         "read the hidden states (they reveal prompts) and alter results. Give --credentials NODE_DIR (from "
         "`parallax swarm invite`) for a private swarm, or --open for a public one whose results are verified",
         config_.host);
  }
  if (config_.credentials) tls_ = std::make_shared<PeerTls>(config_.credentials);
  LoadedModel model = LoadedModel::open(config_.model_path);
  const ModelConfig& mc = model.shard->config();
  n_layers_ = mc.n_layers;
  {
    // The model's identity is the SHA-256 digest of its config and weights (cached beside it).
    ThreadPool pool(config_.threads);
    DigestOptions digest;
    digest.pool = &pool;
    model_digest_ = model_digest(config_.model_path, model.shard->weights(), digest).digest;
  }
  model_id_ = model_digest_.id;
  // One transformer layer's weights (a middle layer: no embedding, no output head).
  layer_bytes_ = double(ModelShard::load(config_.model_path, {n_layers_ / 2, n_layers_ / 2 + 1})->weight_bytes_per_token());
  if (config_.layers && (config_.layers->begin < 0 || config_.layers->end > n_layers_ ||
                         config_.layers->begin >= config_.layers->end)) {
    fail("--layers {}:{} is not a range within the model's {} layers", config_.layers->begin, config_.layers->end,
         n_layers_);
  }
  {
    // What the allocation needs to know about this machine: the memory roofline of decode.
    ThreadPool pool(config_.threads);
    memory_bandwidth_ = measure_read_bandwidth(pool, size_t(64) << 20, 2);
  }
  layers_per_second_ = layer_bytes_ > 0 ? memory_bandwidth_ / layer_bytes_ : 0;
  free_memory_ = config_.memory_bytes > 0 ? config_.memory_bytes : available_memory();
  if (config_.max_layers > 0) {
    // Offer just enough for that many layers (and a little slack for rounding).
    free_memory_ = std::min(free_memory_, config_.max_layers * layer_bytes_ / AllocationConfig{}.memory_ratio * 1.001);
  }

  // Before the peer service: a heartbeat may arrive as soon as the port is bound (peers still
  // calling a dead node whose port this process took), and answering it reads the view.
  ClusterViewConfig view;
  view.model_id = model_id_;
  view.n_layers = n_layers_;
  view.expire_after = config_.expire_after;
  view.max_running_per_stage = config_.stage.scheduler.max_running;
  view.self_id = id_;
  view.hop_bytes_per_token = double(wire::wire_row_bytes(config_.wire_dtype, mc.n_embd));
  view_ = std::make_unique<ClusterView>(view);

  PeerLinkOptions link_options;
  link_options.dtype = config_.wire_dtype;
  // A link is closed when its peer failed: flushing to it is pointless, and the heartbeat
  // thread that closes it must not stall for long.
  link_options.flush_timeout = std::chrono::milliseconds(100);
  link_options.tls = tls_;
  links_ = std::make_unique<PeerLinks>(link_options, [this](const std::string& address, const std::string& message) {
    spdlog::warn("link to {}: {}", address, message);
    heartbeat_now_ = true;  // check that peer at once
    loop_wake_.notify_all();
  });
  if (config_.no_inbound) {
    if (config_.peers.empty()) fail("a node that accepts no connections (--no-inbound) needs a peer to dial out to");
  } else {
    PeerServerOptions server_options;
    server_options.host = config_.host;
    server_options.port = config_.p2p_port;
    server_options.tls = tls_;
    // Every reachable node relays for the nodes attached to it; only --relay ones without a cap.
    server_options.relay.shared_bytes_per_second = config_.relay ? 0 : config_.relay_share_bytes_per_second;
    server_ = std::make_unique<PeerServer>(static_cast<PeerHandler&>(*this), server_options);
    config_.p2p_port = server_->port();
  }
  self_address_ = address();
  local_ = std::make_unique<LocalInbox>([this](PipelineMessage message) { on_pipeline(std::move(message)); });

  // In an open swarm every stage commits to what it sends on, for the heads' verifiers.
  if (config_.open_swarm && config_.stage.commit_top_k == 0) config_.stage.commit_top_k = kDefaultCommitTopK;
  // Nor does any stage of an open swarm keep a prefix cache: a cached block downstream of a
  // dishonest stage holds KV computed from its output, and reusing it (or deduplicating fresh
  // blocks into it) would spread the damage past the attacker's ban and get honest stages blamed.
  if (config_.open_swarm) config_.stage.prefix_caching = false;
  if (config_.worker) {
    // A wrong-model fault computes with another file while it announces the swarm's model.
    const std::string& weights = config_.fault_model_path.empty() ? config_.model_path : config_.fault_model_path;
    stage_ = std::make_unique<StageHost>(weights, address(), id_, config_.threads, config_.stage,
                                         static_cast<MessageSender&>(*this));
    if (config_.layers) {
      stage_->assign(*config_.layers);
      state_ = "ready";
    }
  } else {
    state_ = "ready";  // nothing to load: a head or scheduler only
  }
  if (config_.head) {
    HeadConfig head;
    head.context_size = std::min(config_.stage.context_size, mc.n_ctx_train);
    head.n_vocab = mc.n_vocab;
    head.max_queue = config_.max_queue;
    head.max_attempts = config_.max_attempts;
    head.first_id = (std::stoull(id_, nullptr, 16) & 0xffffffull) << 40;  // ids unique across heads
    head.progress_timeout = config_.progress_timeout;
    head.reuse_prefix = !config_.open_swarm;
    head_ = std::make_shared<RequestHead>(model.tokenizer, head, model_id_);
    SwarmEntryConfig entry;
    entry.self_address = address();
    entry.route_wait = config_.route_wait;
    entry.on_stale_route = [this] {
      heartbeat_now_ = true;  // learn where the peers stand now
      loop_wake_.notify_all();
    };
    if (config_.verify_rate > 0 || config_.verify_full) {
      VerifierConfig verify;
      verify.rate = config_.verify_rate;
      verify.full = config_.verify_full;
      verify.seed = std::stoull(id_, nullptr, 16);
      verify.model_path = config_.model_path;
      verify.n_embd = mc.n_embd;
      verify.self_address = address();
      verify.first_id = head.first_id + (RequestId(1) << 39);  // apart from the head's own ids
      verifier_ = std::make_unique<ResultVerifier>(*view_, static_cast<MessageSender&>(*this), verify,
                                                   [this](const std::string& node_id) {
                                                     if (entry_) entry_->peer_failed(node_id);  // its requests move
                                                   });
      entry.on_completed = [this](const CompletedRoute& done) { verifier_->completed(done); };
      entry.paired = config_.verify_full;
      entry.first_twin_id = head.first_id + (RequestId(1) << 38);  // apart from the head's and the replays' ids
      entry.arbitrate = [this](TokenDispute dispute, std::function<void(TokenVerdict)> done) {
        verifier_->arbitrate(std::move(dispute), std::move(done));
      };
    }
    entry_ = std::make_unique<SwarmEntry>(*view_, static_cast<MessageSender&>(*this), *head_, entry);
    head_->connect(*entry_);
  }

  DiscoveryConfig dht;
  dht.bind_host = config_.host;
  dht.port = config_.p2p_port;  // the same number: TCP for gRPC, UDP for the DHT
  dht.bootstrap = config_.peers;
  dht.swarm_key = "parallax/" + model_id_;
  if (config_.credentials) {
    // Another swarm serving the same model never even sees these values.
    const std::shared_ptr<SwarmCredentials> credentials = config_.credentials;
    dht.swarm_key = fmt::format("parallax/{}/{}", credentials->swarm_id(), model_id_);
    dht.seal = [credentials](const std::string& json) { return seal_announcement(*credentials, json); };
    dht.open = [credentials](std::string_view value) { return open_announcement(*credentials, value); };
  }
  dht.announce_period = config_.announce_period;
  dht.expire_after = config_.expire_after;
  discovery_ = std::make_unique<Discovery>(dht);
  discovery_->on_change([this] { refresh_from_dht(); });
  announce();

  // Reached only through the nodes it attaches to: the first one before anyone is told of it.
  if (config_.no_inbound) update_attachments();

  // Through the given peers: check they serve the same model and learn them now rather than
  // at the DHT's pace.
  for (const std::string& peer : config_.peers) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      try {
        const JoinReplyData reply = client(peer)->join(announcement(), config_.heartbeat_timeout);
        if (!reply.ok) {
          // Name what differs ("layers 3-5 differ from the swarm's model") when the peer says.
          const std::string diff = reply.swarm_model ? describe_digest_difference(*reply.swarm_model, model_digest_) : "";
          fail("peer {} refused this node: {}", peer, diff.empty() ? reply.error : fmt::format("{} ({})", diff, reply.error));
        }
        if (config_.credentials && !reply.revocations.empty()) on_revocations(reply.revocations);
        const HeartbeatResult hb = client(peer)->heartbeat(announcement(), config_.heartbeat_timeout);
        view_->update(hb.node, /*direct=*/true);
        view_->set_rtt(hb.node.node_id, hb.rtt_seconds);
        break;
      } catch (const Error& e) {
        const std::string what = e.what();
        // This node refused the peer's credential, or the peer refused this node: final.
        if (what.find("refused this node") != std::string::npos || what.find("refused the peer") != std::string::npos) {
          throw;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          // A TLS peer drops a handshake it refuses without a word: say what that can mean.
          if (what.find("Socket closed") == std::string::npos) throw;
          if (!config_.credentials) {
            fail("{} (the peer may be in a private swarm: give this node --credentials NODE_DIR from `parallax "
                 "swarm invite`)",
                 what);
          }
          fail("{} (the peer may have refused this node's credential '{}' (serial {}) of swarm {}: revoked, "
               "expired or from another swarm; the peer's log says which)",
               what, config_.credentials->self().name, config_.credentials->self().serial,
               config_.credentials->swarm_id());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }

  threads_.emplace_back([this] {
    std::unique_lock lock(loop_mutex_);
    while (!stopping_) {
      loop_wake_.wait_for(lock, config_.announce_period);
      if (stopping_) break;
      lock.unlock();
      announce();
      refresh_from_dht();
      lock.lock();
    }
  });
  threads_.emplace_back([this] { heartbeat_loop(); });
  threads_.emplace_back([this] { probe_loop(); });
  if (stage_) threads_.emplace_back([this] { load_loop(); });
  threads_.emplace_back([this] { scheduler_loop(); });  // acts only while this node is the scheduler
  spdlog::info("node {} at {} ({}), model {} ({} layers)", id_, address(),
               config_.worker ? (config_.layers ? fmt::format("layers {}:{}", config_.layers->begin, config_.layers->end)
                                                : std::string("worker"))
                              : std::string("no worker"),
               model_id_, n_layers_);
}

SwarmNode::~SwarmNode() {
  {
    std::lock_guard lock(loop_mutex_);
    stopping_ = true;
  }
  loop_wake_.notify_all();
  {
    std::lock_guard lock(load_mutex_);
    load_stopping_ = true;
  }
  load_wake_.notify_all();
  for (auto& t : threads_) t.join();
  {
    std::map<std::string, std::unique_ptr<RelayAttachment>> attachments;
    {
      std::lock_guard lock(reach_mutex_);
      attachments.swap(attachments_);
    }
    attachments.clear();  // closes them: no relayed frame or call reaches the handler after this
  }
  if (server_) server_->shutdown();   // no handler runs after this
  local_->stop();        // ... nor a message to itself
  if (head_) head_->shutdown();
  verifier_.reset();
  entry_.reset();
  stage_.reset();        // its executor's last messages still go out through the links
  links_.reset();
  discovery_.reset();
}

std::string SwarmNode::address() const { return addresses().front(); }

std::string SwarmNode::listen_address() const {
  return config_.no_inbound ? std::string("none") : join_host_port(config_.host, config_.p2p_port);
}

std::shared_ptr<Engine> SwarmNode::engine() const { return head_; }

std::optional<LayerRange> SwarmNode::layers() const { return stage_ ? stage_->range() : std::nullopt; }

std::string SwarmNode::cluster_json() const {
  nlohmann::json j = view_->to_json();
  j["self"] = id_;
  j["reach"] = reach_json();
  if (verifier_) j["verification"] = verifier_->to_json();
  return j.dump();
}

NodeAnnouncement SwarmNode::announcement() const {
  NodeAnnouncement a;
  a.node_id = id_;
  a.layers_per_second = layers_per_second_;
  a.addresses = addresses();
  a.address = a.addresses.front();
  a.relay = config_.relay;
  a.links = view_->measured_links();
  a.api_address = config_.api_address;
  a.model_id = model_id_;
  a.n_layers = n_layers_;
  if (stage_) {
    if (auto range = stage_->range()) a.layer_begin = range->begin, a.layer_end = range->end;
    const StageStats stats = stage_->stats();
    // Once the stage has run, what it measures replaces the bandwidth estimate.
    if (stats.recent_step_seconds > 0 && a.layer_end > a.layer_begin) {
      a.layers_per_second = (a.layer_end - a.layer_begin) / stats.recent_step_seconds;
    }
    a.load = std::min(1.0, double(stats.running + stats.waiting) / std::max(1, config_.stage.scheduler.max_running));
    a.free_kv_tokens = stats.free_kv_tokens;
  }
  {
    std::lock_guard lock(state_mutex_);
    a.state = state_;
  }
  a.scheduler = acting_scheduler_.load();
  a.memory_bandwidth = memory_bandwidth_;
  a.free_memory = stage_ ? free_memory_ : 0;  // a node without a worker offers nothing to hold layers
  // Microseconds of wall time, strictly increasing: announcements from heartbeats and from the
  // DHT (which numbers its re-publications upwards from ours) order consistently.
  const uint64_t now_us = uint64_t(unix_micros());
  uint64_t prev = sequence_.load();
  while (!sequence_.compare_exchange_weak(prev, std::max(prev + 1, now_us))) {
  }
  a.sequence = std::max(prev + 1, now_us);
  return a;
}

void SwarmNode::announce() {
  const NodeAnnouncement a = announcement();
  view_->update(a);
  discovery_->announce(a);
}

void SwarmNode::set_state(const std::string& state) {
  std::lock_guard lock(state_mutex_);
  state_ = state;
}

void SwarmNode::refresh_from_dht() {
  for (const NodeAnnouncement& n : discovery_->live_nodes()) {
    if (n.node_id != id_) view_->update(n);
  }
}

void SwarmNode::heartbeat_loop() {
  std::unique_lock lock(loop_mutex_);
  while (!stopping_) {
    loop_wake_.wait_for(lock, config_.heartbeat_period, [&] { return stopping_ || heartbeat_now_.load(); });
    if (stopping_) break;
    heartbeat_now_ = false;
    lock.unlock();
    if (tls_) apply_revocations();
    if (attaching()) update_attachments();
    lock.lock();
    std::vector<NodeAnnouncement> introductions;
    introductions.swap(introductions_);
    lock.unlock();
    const NodeAnnouncement self = announcement();
    for (const NodeAnnouncement& newcomer : introductions) {
      for (const NodeAnnouncement& peer : view_->live()) {
        if (peer.node_id == id_ || peer.node_id == newcomer.node_id) continue;
        try {
          client(peer.address)->heartbeat(newcomer, config_.heartbeat_timeout);  // on its behalf
        } catch (const Error&) {
        }
      }
    }
    ++heartbeat_round_;
    for (const NodeAnnouncement& peer : view_->live()) {
      std::string target = peer.node_id == id_ ? peer.address : view_->address_from(peer, id_);
      if (target.empty()) {
        // None of its addresses reachable from here: try again now and then (a fixed port forward).
        if (heartbeat_round_ % 8 != 0) continue;
        target = peer.address;
      }
      try {
        const HeartbeatResult hb = client(target)->heartbeat(self, config_.heartbeat_timeout);
        if (peer.node_id == id_) {
          view_->set_rtt(id_, hb.rtt_seconds);  // its own stage is reached over gRPC too
          continue;
        }
        if (hb.node.node_id != peer.node_id) {
          // Another process answers at the peer's address (it died and something was started on
          // its port): the peer is gone, and what was routed through it fails over now.
          spdlog::warn("peer {} at {} is gone: node {} answers there now", peer.node_id, peer.address, hb.node.node_id);
          missed_heartbeats_.erase(peer.node_id);
          peer_failed(peer.node_id);
          if (hb.node.node_id != id_) view_->update(hb.node, /*direct=*/true);
          continue;
        }
        view_->update(hb.node, /*direct=*/true);
        view_->set_rtt(peer.node_id, hb.rtt_seconds);
        view_->mark_reachable(peer.node_id, target);
        reported_unreachable(peer.node_id, hb.unreachable);
        missed_heartbeats_.erase(peer.node_id);
      } catch (const Error& e) {
        if (peer.node_id == id_) continue;
        Misses& misses = missed_heartbeats_[peer.node_id];
        if (misses.count++ == 0) misses.first = std::chrono::steady_clock::now();
        if (misses.count >= config_.heartbeat_failures) {
          heartbeat_failed(peer, target, e.what());
        } else {
          heartbeat_now_ = true;  // ask again soon rather than a full period later
        }
      }
    }
    lock.lock();
  }
}

void SwarmNode::peer_failed(const std::string& node_id) {
  const std::optional<NodeAnnouncement> peer = view_->find(node_id);
  view_->remove(node_id);
  if (entry_) entry_->peer_failed(node_id);
  if (peer) {
    for (const std::string& address : announced_addresses(*peer)) forget_address(address);
  }
}

void SwarmNode::forget_address(const std::string& address) {
  links_->remove(address);
  std::lock_guard lock(clients_mutex_);
  clients_.erase(address);
}

std::shared_ptr<PeerClient> SwarmNode::client(const std::string& address) {
  std::lock_guard lock(clients_mutex_);
  auto& c = clients_[address];
  if (!c) c = std::make_shared<PeerClient>(address, tls_);
  return c;
}

void SwarmNode::scheduler_loop() {
  SchedulerPolicy policy;
  policy.model.n_layers = n_layers_;
  policy.model.layer_bytes = layer_bytes_;
  policy.wait_nodes = config_.wait_nodes;
  std::unique_lock lock(loop_mutex_);
  while (!stopping_) {
    loop_wake_.wait_for(lock, std::chrono::milliseconds(300));
    if (stopping_) break;
    lock.unlock();
    const std::vector<NodeAnnouncement> nodes = view_->live();
    const auto now = std::chrono::steady_clock::now();
    const bool acting = should_schedule(nodes);
    if (acting != acting_scheduler_.exchange(acting)) {
      spdlog::info(acting ? "this node runs the layer scheduler now" : "another node runs the layer scheduler now");
      if (acting) pending_.clear();
    }
    if (!acting) {
      lock.lock();
      continue;
    }
    // Assignments sent but not yet announced back hold further planning: until the node is
    // ready with its range, gone, or visibly not loading (it failed) after a moment to announce.
    std::erase_if(pending_, [&](const auto& p) {
      const auto node = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.node_id == p.first; });
      if (node == nodes.end()) return true;
      const auto age = now - p.second.second;
      const bool done = node->state == "ready" && node->layer_begin == p.second.first.begin &&
                        node->layer_end == p.second.first.end;
      return done || (node->state != "loading" && age > std::chrono::seconds(2)) || age > std::chrono::seconds(120);
    });
    if (pending_.empty() && !waiting_for_links(nodes)) {
      try {
        for (const auto& [node_id, range] : plan_assignments(nodes, fixed_nodes_, policy)) {
          const auto node = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.node_id == node_id; });
          // Epochs from the wall clock keep growing when another node takes over scheduling.
          assignment_epoch_ = std::max(assignment_epoch_ + 1, uint64_t(unix_micros()));
          Assignment a{model_id_, range.begin, range.end, assignment_epoch_};
          spdlog::info("scheduler: node {} gets layers [{}, {})", node_id, range.begin, range.end);
          try {
            const AssignReply reply = client(node->address)->assign(a, config_.heartbeat_timeout);
            if (reply.ok) {
              pending_[node_id] = {range, now};
            } else {
              spdlog::info("scheduler: node {} keeps its own layers: {}", node_id, reply.error);
              fixed_nodes_.insert(node_id);
            }
          } catch (const Error& e) {
            spdlog::warn("scheduler: assigning node {} failed: {}", node_id, e.what());
          }
        }
      } catch (const Error& e) {
        spdlog::error("scheduler: {}", e.what());
      }
    }
    lock.lock();
  }
}

bool SwarmNode::should_schedule(const std::vector<NodeAnnouncement>& nodes) const {
  if (config_.scheduler) return true;  // started as the swarm's scheduler (`parallax run`)
  // Otherwise only when no other live node schedules, and then the one with the smallest id:
  // the same answer on every node that sees the same members.
  std::string smallest = id_;
  for (const NodeAnnouncement& n : nodes) {
    if (n.node_id == id_ || n.state == "draining" || n.state == "leaving") continue;
    if (n.scheduler) return false;
    smallest = std::min(smallest, n.node_id);
  }
  return smallest == id_;
}

void SwarmNode::tell_peers_state(const std::string& state) {
  set_state(state);
  announce();
  // A heartbeat carries it to every peer now, not at the DHT's pace.
  const NodeAnnouncement self = announcement();
  for (const NodeAnnouncement& peer : view_->live()) {
    if (peer.node_id == id_) continue;
    try {
      client(peer.address)->heartbeat(self, config_.heartbeat_timeout);
    } catch (const Error&) {
    }
  }
}

void SwarmNode::leave(std::chrono::milliseconds grace) {
  tell_peers_state("draining");
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (stage_ && stage_->requests() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (stage_ && stage_->requests() > 0) spdlog::warn("leaving with {} requests still passing through", stage_->requests());
  tell_peers_state("leaving");
  discovery_->withdraw();
}

void SwarmNode::on_pipeline(PipelineMessage message) {
  std::visit(
      [&](auto&& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, OpenMessage>) {
          if (stage_) return stage_->on_open(std::move(m));
          SampledToken refusal{m.setup.id, 0, -1, {}, address() + " holds no layers", {}};
          if (!m.setup.hops.empty()) refusal.stale_node = m.setup.hops.front().node_id;
          send(m.setup.head, TokensMessage{{std::move(refusal)}});
        } else if constexpr (std::is_same_v<T, AppendMessage>) {
          if (stage_) stage_->on_append(m);
        } else if constexpr (std::is_same_v<T, ChunksMessage>) {
          if (stage_) stage_->on_chunks(std::move(m));
        } else if constexpr (std::is_same_v<T, TokensMessage>) {
          if (verifier_) std::erase_if(m.tokens, [&](const SampledToken& t) { return verifier_->on_token(t); });
          if (entry_ && !m.tokens.empty()) entry_->on_tokens(std::move(m.tokens));
        } else if constexpr (std::is_same_v<T, ReportsMessage>) {
          if (verifier_) verifier_->on_reports(std::move(m.reports));
        } else if constexpr (std::is_same_v<T, ReleaseMessage>) {
          if (stage_) stage_->on_release(m);
        }
      },
      message);
}

NodeAnnouncement SwarmNode::on_heartbeat(const NodeAnnouncement& from) {
  if (from.node_id != id_) view_->update(from, /*direct=*/true);
  return announcement();
}

AssignReply SwarmNode::on_assign(const Assignment& a) {
  if (a.model_id != model_id_) return {false, fmt::format("this node serves model {}, not {}", model_id_, a.model_id)};
  if (!stage_) return {false, "this node holds no layers (--no-worker)"};
  if (config_.layers) return {false, fmt::format("pinned to layers {}:{}", config_.layers->begin, config_.layers->end)};
  if (a.layer_begin < 0 || a.layer_end > n_layers_ || a.layer_begin > a.layer_end) {
    return {false, fmt::format("[{}, {}) is not a range of the model's {} layers", a.layer_begin, a.layer_end, n_layers_)};
  }
  {
    std::lock_guard lock(state_mutex_);
    if (a.epoch < assignment_epoch_) return {false, "an older assignment"};
    assignment_epoch_ = a.epoch;
    state_ = "loading";
  }
  {
    // Loading a shard can take long (a large model from disk): the scheduler is answered now
    // and watches the announcements, so a slow or stalled node never holds up its planning.
    std::lock_guard lock(load_mutex_);
    next_load_ = LayerRange{a.layer_begin, a.layer_end};
  }
  load_wake_.notify_all();
  announce();
  return {true, {}};
}

void SwarmNode::load_loop() {
  std::unique_lock lock(load_mutex_);
  for (;;) {
    load_wake_.wait(lock, [&] { return load_stopping_ || next_load_.has_value(); });
    if (load_stopping_) return;
    const LayerRange range = *next_load_;
    next_load_.reset();
    lock.unlock();
    bool ok = true;
    try {
      stage_->assign(range);
    } catch (const Error& e) {
      spdlog::error("cannot hold layers [{}, {}): {}", range.begin, range.end, e.what());
      ok = false;
    }
    lock.lock();
    if (next_load_) continue;  // a newer assignment came meanwhile: it decides the state
    lock.unlock();
    set_state(ok || stage_->range() ? "ready" : "joining");
    announce();
    heartbeat_now_ = true;  // tell the peers (the scheduler, the heads) at once
    loop_wake_.notify_all();
    lock.lock();
  }
}

void SwarmNode::on_abort(RequestId request) {
  if (stage_) stage_->on_release(ReleaseMessage{request});
}

JoinReplyData SwarmNode::on_join(const NodeAnnouncement& node) {
  JoinReplyData reply;
  if (node.model_id != model_id_) {
    reply.ok = false;
    reply.error = fmt::format("this swarm serves model {}, the node has {}", model_id_, node.model_id);
    reply.swarm_model = model_digest_;
    return reply;
  }
  view_->update(node, /*direct=*/true);
  {
    // Introduce the newcomer to every peer this node knows (next heartbeat round), so that
    // membership does not depend on the DHT alone reaching everyone.
    std::lock_guard lock(loop_mutex_);
    introductions_.push_back(node);
    heartbeat_now_ = true;
  }
  loop_wake_.notify_all();
  reply.ok = true;
  for (const NodeAnnouncement& n : view_->live()) {
    if (n.scheduler) reply.scheduler_address = n.address;
  }
  if (config_.credentials) reply.revocations = config_.credentials->revocations_text();
  return reply;
}

std::string SwarmNode::on_cluster() { return cluster_json(); }

bool SwarmNode::send(const std::string& address, PipelineMessage message) {
  // The head and the stage of one process (`run` with its worker) skip the network.
  if (address == self_address_ || relay_target(address) == id_) return local_->post(std::move(message));
  if (const std::optional<bool> sent = send_to_attached(address, message)) return *sent;
  return links_->send(address, std::move(message));
}

}  // namespace px::swarm
