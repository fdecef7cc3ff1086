#include "swarm/swarm_entry.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace px::swarm {

SwarmEntry::SwarmEntry(ClusterView& view, MessageSender& sender, RequestHead& head, SwarmEntryConfig config)
    : view_(view), sender_(sender), head_(head), config_(std::move(config)) {
  retry_thread_ = std::thread([this] { retry_waiting(); });
}

SwarmEntry::~SwarmEntry() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  retry_thread_.join();
}

bool SwarmEntry::try_start(StageRequestSetup& setup, std::vector<int32_t>& tokens) {
  const std::optional<ChosenRoute> route = view_.choose_route();
  if (!route) return false;
  InFlight f;
  f.cost_seconds = route->cost_seconds;
  setup.head = config_.self_address;
  setup.hops.clear();
  for (const NodeAnnouncement& stage : route->stages) {
    setup.hops.push_back({stage.address, stage.node_id, stage.layer_begin, stage.layer_end});
    f.node_ids.push_back(stage.node_id);
  }
  f.first_hop = setup.hops.front().address;
  f.hops = setup.hops;
  const RequestId id = setup.id;
  view_.route_started(f.node_ids, id);
  {
    std::lock_guard lock(mutex_);
    in_flight_[id] = f;
  }
  if (!sender_.send(f.first_hop, OpenMessage{std::move(setup), std::move(tokens)})) {
    fail(id, "the first stage " + f.first_hop + " cannot be reached");
  }
  return true;
}

void SwarmEntry::open(StageRequestSetup setup, std::vector<int32_t> tokens) {
  if (try_start(setup, tokens)) return;
  std::lock_guard lock(mutex_);
  waiting_.push_back({std::move(setup), std::move(tokens), std::chrono::steady_clock::now() + config_.route_wait});
  wake_.notify_all();
}

void SwarmEntry::retry_waiting() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (waiting_.empty()) continue;
    std::vector<Waiting> batch;
    batch.swap(waiting_);
    lock.unlock();
    std::vector<Waiting> still;
    const auto now = std::chrono::steady_clock::now();
    for (Waiting& w : batch) {
      if (try_start(w.setup, w.tokens)) continue;
      if (now >= w.deadline) {
        head_.on_tokens({SampledToken{w.setup.id, 0, -1, {}, no_cover_message(), /*stale_node=*/{}, /*no_route=*/true}});
        continue;
      }
      still.push_back(std::move(w));
    }
    lock.lock();
    for (Waiting& w : still) waiting_.push_back(std::move(w));
  }
}

void SwarmEntry::append(RequestId request, int32_t position, int32_t token) {
  std::string first;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    first = it->second.first_hop;
  }
  if (!sender_.send(first, AppendMessage{request, position, token})) {
    fail(request, "the first stage " + first + " cannot be reached");
  }
}

void SwarmEntry::release(RequestId request) {
  InFlight f;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(waiting_, [&](const Waiting& w) { return w.setup.id == request; });
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    f = std::move(it->second);
    in_flight_.erase(it);
  }
  view_.route_ended(f.node_ids);
  sender_.send(f.first_hop, ReleaseMessage{request});  // a dead first stage frees nothing anyway
}

void SwarmEntry::completed(RequestId request, const std::vector<int32_t>& tokens) {
  if (!config_.on_completed) return;
  std::vector<RouteHop> hops;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    hops = it->second.hops;
  }
  config_.on_completed(request, hops, tokens);
}

void SwarmEntry::fail(RequestId request, const std::string& error) {
  head_.on_tokens({SampledToken{request, 0, -1, {}, error, {}}});
}

void SwarmEntry::on_tokens(std::vector<SampledToken> tokens) {
  bool stale = false;
  for (const SampledToken& t : tokens) {
    if (t.error.empty() || t.stale_node.empty()) continue;
    spdlog::info("route of request {} was stale ({}); routing around node {}", t.request, t.error, t.stale_node);
    view_.mark_stale(t.stale_node);
    stale = true;
  }
  if (stale && config_.on_stale_route) config_.on_stale_route();
  head_.on_tokens(std::move(tokens));
}

double SwarmEntry::expected_seconds(RequestId request, int tokens) const {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(request);
  if (it == in_flight_.end()) return 0;
  // Prefill runs many positions per pass (about 8 times a decoded token's rate on a CPU, less
  // counted here); then the margin of 4 covers batching with other requests and noise.
  return 4 * it->second.cost_seconds * (1 + tokens / 8.0);
}

void SwarmEntry::stalled(RequestId request) {
  std::vector<std::string> nodes;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    nodes = it->second.node_ids;
  }
  spdlog::warn("request {} made no progress on its route; routing around its {} stages until they answer", request,
               nodes.size());
  for (const std::string& id : nodes) view_.mark_stale(id);
  if (config_.on_stale_route) config_.on_stale_route();
}

void SwarmEntry::peer_failed(const std::string& node_id) {
  std::vector<RequestId> lost;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, f] : in_flight_) {
      if (std::find(f.node_ids.begin(), f.node_ids.end(), node_id) != f.node_ids.end()) lost.push_back(id);
    }
  }
  if (!lost.empty()) spdlog::warn("peer {} failed: {} requests move to another pipeline", node_id, lost.size());
  for (RequestId id : lost) fail(id, "peer " + node_id + " failed");
}

bool SwarmEntry::wait_until_available(std::string& why) {
  const auto deadline = std::chrono::steady_clock::now() + config_.route_wait;
  while (!view_.choose_route()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      why = no_cover_message();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string SwarmEntry::no_cover_message() const {
  return fmt::format("no pipeline of the swarm covers all {} layers of the model (waited {} s for one)",
                     view_.config().n_layers, config_.route_wait.count() / 1000.0);
}

int64_t SwarmEntry::queued() const {
  std::lock_guard lock(mutex_);
  return int64_t(waiting_.size());
}

void SwarmEntry::add_stats(EngineStats& stats) const {
  std::lock_guard lock(mutex_);
  stats.requests_running = int64_t(in_flight_.size());
  stats.requests_queued = int64_t(waiting_.size());
}

}  // namespace px::swarm
