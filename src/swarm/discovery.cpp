#include "swarm/discovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <opendht/dhtrunner.h>
#include <opendht/value.h>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "swarm/announcement_json.h"
#include "swarm/host_port.h"
#include "swarm/live_nodes.h"

namespace px::swarm {
namespace {

using Clock = LiveNodeTable::Clock;

std::string_view bytes_of(const dht::Value& value) {
  return {reinterpret_cast<const char*>(value.data.data()), value.data.size()};
}

NodeAnnouncement decode_value(const dht::Value& value, const ValueOpener& open) {
  if (value.type != kAnnouncementValueType)
    fail("announcement: DHT value of type {}, not {}", value.type, kAnnouncementValueType);
  if (open) return announcement_from_json(open(bytes_of(value)));
  return announcement_from_json(bytes_of(value));
}

bool is_announcement(const dht::Value& value, const ValueOpener& open) {
  try {
    decode_value(value, open);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// How long storing nodes keep a value not re-published. Once a node has stored a value, OpenDHT
// 2.4 schedules the next send 10 s (its REANNOUNCE_MARGIN) before the value expires; with a
// lifetime under 10 s that moment has passed and it re-sends without pause (thousands of packets
// per second from 3 nodes). Liveness does not depend on this lifetime: it is judged locally.
constexpr std::chrono::milliseconds kMinValueLifetime = std::chrono::seconds(30);

// Storing nodes keep only valid announcements, and let a value (one per node, under a fixed id)
// be replaced only by a newer announcement of the same node: a peer cannot overwrite another
// node's value under a different node id.
dht::ValueType announcement_value_type(std::chrono::milliseconds expire_after, const ValueOpener& open) {
  return dht::ValueType(
      kAnnouncementValueType, "parallax node announcement", std::max(expire_after, kMinValueLifetime),
      [open](dht::InfoHash, std::shared_ptr<dht::Value>& value, const dht::InfoHash&, const dht::SockAddr&) {
        return is_announcement(*value, open);
      },
      [open](dht::InfoHash, const std::shared_ptr<dht::Value>& stored, std::shared_ptr<dht::Value>& replacement,
             const dht::InfoHash&, const dht::SockAddr&) {
        try {
          const NodeAnnouncement before = decode_value(*stored, open);
          const NodeAnnouncement after = decode_value(*replacement, open);
          return before.node_id == after.node_id && after.sequence > before.sequence;
        } catch (const Error&) {
          return false;
        }
      });
}

void check_config(const DiscoveryConfig& c) {
  if (c.swarm_key.empty()) fail("discovery: the swarm key is empty");
  if (c.port < 0 || c.port > 65535) fail("discovery: port {} is not in 0..65535", c.port);
  if (c.announce_period.count() <= 0) fail("discovery: the announce period must be positive");
  if (c.expire_after <= c.announce_period)
    fail("discovery: expire_after ({} ms) must exceed the announce period ({} ms), or live nodes would expire",
         c.expire_after.count(), c.announce_period.count());
}

dht::SockAddr ipv4_bind_address(const DiscoveryConfig& c) {
  std::vector<dht::SockAddr> found;
  try {
    found = dht::SockAddr::resolve(c.bind_host, std::to_string(c.port));
  } catch (const std::exception& e) {
    fail("discovery: cannot resolve bind host '{}': {}", c.bind_host, e.what());
  }
  const auto ipv4 =
      std::find_if(found.begin(), found.end(), [](const dht::SockAddr& a) { return a.getFamily() == AF_INET; });
  if (ipv4 == found.end()) fail("discovery: bind host '{}' has no IPv4 address", c.bind_host);
  return *ipv4;
}

dht::Value::Id random_value_id() {
  std::random_device device;
  std::uniform_int_distribution<dht::Value::Id> any_valid(1);  // 0 is Value::INVALID_ID
  return any_valid(device);
}

}  // namespace

class Discovery::Impl {
 public:
  explicit Impl(DiscoveryConfig config)
      : config_(std::move(config)),
        key_(dht::InfoHash::get(config_.swarm_key)),
        value_id_(random_value_id()),
        table_(config_.expire_after) {
    check_config(config_);
    std::vector<HostPort> bootstrap;
    for (const auto& peer : config_.bootstrap) bootstrap.push_back(parse_host_port(peer));

    dht::DhtRunner::Config dht_config;
    dht_config.dht_config.node_config.network = kDiscoveryNetworkId;
    dht_config.bind4 = ipv4_bind_address(config_);  // bind6 stays unset: no IPv6 socket
    dht_config.threaded = true;
    try {
      runner_.run(dht_config, {});
    } catch (const std::exception& e) {
      fail("discovery: cannot bind UDP {}: {}", dht_config.bind4.toString(), e.what());
    }
    port_ = runner_.getBoundPort(AF_INET);
    runner_.registerType(announcement_value_type(config_.expire_after, config_.open));
    for (const auto& peer : bootstrap) runner_.bootstrap(peer.host, std::to_string(peer.port));
    worker_ = std::thread([this] { run_worker(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
    runner_.join();  // stops the socket and the DHT thread; pending operations are dropped
  }

  int port() const { return port_; }

  void announce(const NodeAnnouncement& self) {
    validate_announcement(self);
    std::unique_lock lock(mu_);
    self_ = self;
    sequence_ = std::max(sequence_, self.sequence);
    publishing_ = true;
    publish(lock);
  }

  void withdraw() {
    std::unique_lock lock(mu_);
    if (!publishing_) return;
    self_.state = "leaving";
    publishing_ = false;
    publish(lock);
  }

  std::vector<NodeAnnouncement> live_nodes() const {
    std::lock_guard lock(mu_);
    return table_.live(Clock::now());
  }

  void on_change(std::function<void()> callback) {
    std::lock_guard lock(mu_);
    callback_ = std::move(callback);
  }

  size_t rejected_values() const {
    std::lock_guard lock(mu_);
    return rejected_;
  }

 private:
  // Publishes self_ with the next sequence number under this node's value id, replacing its
  // previous value in the DHT, and records it as heard, so live_nodes() includes this node
  // without a round trip. Called with `lock` held; releases it around the DHT call.
  void publish(std::unique_lock<std::mutex>& lock) {
    self_.sequence = ++sequence_;
    const std::string json = config_.seal ? config_.seal(announcement_to_json(self_)) : announcement_to_json(self_);
    const auto now = Clock::now();
    note_update(table_.update(self_, now));
    next_publish_ = now + config_.announce_period;
    wake_worker();  // its next deadline moved
    lock.unlock();
    try {
      runner_.put(key_, std::make_shared<dht::Value>(kAnnouncementValueType,
                                                      dht::Blob(json.begin(), json.end()), value_id_));
    } catch (const std::exception& e) {  // only allocation can fail here; the next period retries
      spdlog::error("discovery {}: publishing failed: {}", config_.swarm_key, e.what());
    }
    lock.lock();
  }

  // Fetches every value under the swarm key (a get returns what the storing nodes hold now; a
  // listen would miss replaced values, see discovery.h). A get delivers values as nodes answer
  // and completes when the nodes nearest the key have, which takes longer than a period when
  // some are slow or gone, so polls may overlap; their number is capped in case completions
  // stop coming.
  void poll(std::unique_lock<std::mutex>& lock, Clock::time_point now) {
    next_poll_ = now + config_.announce_period;
    if (polls_in_flight_ >= kMaxPollsInFlight) {
      if (now - last_poll_done_ < config_.expire_after) return;
      polls_in_flight_ = 0;  // none completed for that long: presumed lost
    }
    ++polls_in_flight_;
    forget_values_unseen_since(now - config_.expire_after);
    lock.unlock();
    try {
      nudge_if_stuck_connecting();
      runner_.get(
          key_,
          [this](const std::vector<std::shared_ptr<dht::Value>>& values) {
            on_values(values);
            return true;
          },
          [this](bool) {
            std::lock_guard done_lock(mu_);
            polls_in_flight_ = std::max(polls_in_flight_, 1) - 1;
            last_poll_done_ = Clock::now();
          });
    } catch (const std::exception& e) {
      spdlog::error("discovery {}: polling failed: {}", config_.swarm_key, e.what());
    }
    lock.lock();
  }

  // OpenDHT 2.4 holds every put and get while the node is "connecting": it knows peers but none
  // has answered it yet. A node that peers only ever contacted (typically the first of a swarm)
  // can stay so indefinitely; the library's remedy for a changed network, which queries the
  // routing table at once, gets it answers. Worker thread, no lock held (the call takes the
  // DHT's lock, which the DHT thread holds while it calls into this class).
  void nudge_if_stuck_connecting() {
    const auto stats = runner_.getNodesStats(AF_INET);
    polls_while_connecting_ = stats.good_nodes == 0 && stats.dubious_nodes > 0 ? polls_while_connecting_ + 1 : 0;
    if (polls_while_connecting_ >= 2) {
      runner_.connectivityChanged();
      polls_while_connecting_ = 0;
    }
  }

  // DHT thread: values under the swarm key. Each poll returns every value again, once per
  // storing node, so a value decodes (and, if invalid, is reported) only when its bytes change.
  void on_values(const std::vector<std::shared_ptr<dht::Value>>& values) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    for (const auto& value : values) {
      const size_t digest = std::hash<std::string_view>{}(bytes_of(*value)) ^ value->type;
      auto [seen, first_time] = seen_values_.try_emplace(value->id, SeenValue{digest, now, {}});
      seen->second.last_seen = now;
      if (!first_time && seen->second.digest == digest) continue;
      seen->second.digest = digest;
      try {
        const NodeAnnouncement announcement = decode_value(*value, config_.open);
        const auto update = table_.update(announcement, now);
        if (update == LiveNodeTable::Update::Full)
          spdlog::warn("discovery {}: ignoring node {}: already tracking {} nodes", config_.swarm_key,
                       announcement.node_id, table_.size());
        note_update(update);
        seen->second.rejected.clear();
      } catch (const Error& e) {
        ++rejected_;
        if (seen->second.rejected != e.what()) {
          spdlog::warn("discovery {}: ignoring DHT value {:016x}: {}", config_.swarm_key, value->id, e.what());
          seen->second.rejected = e.what();
        }
      }
    }
  }

  // Values the DHT no longer returns have expired there; their ids need no memory.
  void forget_values_unseen_since(Clock::time_point cutoff) {
    std::erase_if(seen_values_, [&](const auto& entry) { return entry.second.last_seen < cutoff; });
  }

  void note_update(LiveNodeTable::Update update) {
    if (update == LiveNodeTable::Update::Changed) {
      change_pending_ = true;
      wake_worker();
    }
  }

  void wake_worker() {
    wake_requested_ = true;
    wake_.notify_all();
  }

  // Re-publishes and polls on schedule, expires silent nodes and runs the change callback, so
  // user code never runs on the DHT thread or under a Discovery lock.
  void run_worker() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      wake_requested_ = false;
      const auto now = Clock::now();
      if (publishing_ && now >= next_publish_) {
        try {
          publish(lock);
        } catch (const std::exception& e) {  // self_ was validated by announce(); defensive
          spdlog::error("discovery {}: re-publishing failed: {}", config_.swarm_key, e.what());
          publishing_ = false;
        }
        continue;
      }
      if (now >= next_poll_) {
        poll(lock, now);
        continue;
      }
      if (table_.expire(now)) change_pending_ = true;
      if (change_pending_ && callback_) {
        change_pending_ = false;
        const auto callback = callback_;
        lock.unlock();
        try {
          callback();
        } catch (const std::exception& e) {
          spdlog::error("discovery {}: change callback threw: {}", config_.swarm_key, e.what());
        }
        lock.lock();
        continue;
      }
      change_pending_ = false;  // nobody to tell
      auto deadline = next_poll_;
      if (publishing_) deadline = std::min(deadline, next_publish_);
      if (const auto expiry = table_.next_expiry()) deadline = std::min(deadline, *expiry);
      wake_.wait_until(lock, deadline, [this] { return stopping_ || wake_requested_; });
    }
  }

  static constexpr int kMaxPollsInFlight = 32;

  struct SeenValue {
    size_t digest;  // of the bytes and type last decoded
    Clock::time_point last_seen;
    std::string rejected;  // why its last bytes were refused (each reason is logged once per value)
  };

  const DiscoveryConfig config_;
  const dht::InfoHash key_;
  const dht::Value::Id value_id_;  // this node's announcements replace each other under it
  int port_ = 0;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  LiveNodeTable table_;
  std::unordered_map<dht::Value::Id, SeenValue> seen_values_;
  NodeAnnouncement self_;
  uint64_t sequence_ = 0;
  bool publishing_ = false;
  Clock::time_point next_publish_;
  Clock::time_point next_poll_;  // the epoch: poll at once
  int polls_in_flight_ = 0;
  Clock::time_point last_poll_done_;
  int polls_while_connecting_ = 0;  // worker thread only
  bool change_pending_ = false;
  bool wake_requested_ = false;
  bool stopping_ = false;
  size_t rejected_ = 0;
  std::function<void()> callback_;
  std::thread worker_;
  // Last, so it is destroyed first: its thread calls into the members above.
  dht::DhtRunner runner_;
};

Discovery::Discovery(DiscoveryConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Discovery::~Discovery() = default;
int Discovery::port() const { return impl_->port(); }
void Discovery::announce(const NodeAnnouncement& self) { impl_->announce(self); }
void Discovery::withdraw() { impl_->withdraw(); }
std::vector<NodeAnnouncement> Discovery::live_nodes() const { return impl_->live_nodes(); }
void Discovery::on_change(std::function<void()> callback) { impl_->on_change(std::move(callback)); }
size_t Discovery::rejected_values() const { return impl_->rejected_values(); }

}  // namespace px::swarm
