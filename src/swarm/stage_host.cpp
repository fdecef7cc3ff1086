#include "swarm/stage_host.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "swarm/input_digest.h"

namespace px::swarm {

StageHost::StageHost(std::string model_path, std::string self_address, std::string self_id, int n_threads,
                     StageConfig config, MessageSender& sender)
    : model_path_(std::move(model_path)),
      self_address_(std::move(self_address)),
      self_id_(std::move(self_id)),
      config_(config),
      sender_(sender),
      pool_(std::make_unique<ThreadPool>(n_threads)) {}

StageHost::~StageHost() {
  std::unique_lock lock(stage_mutex_);
  if (executor_) executor_->stop();
  executor_.reset();
}

void StageHost::assign(LayerRange range) {
  std::shared_ptr<const ModelShard> shard;
  if (range.end > range.begin) shard = ModelShard::load(model_path_, range);  // before anything changes
  std::map<RequestId, Hops> lost;
  {
    std::unique_lock lock(stage_mutex_);
    if (executor_) executor_->stop();
    executor_.reset();
    shard_ = std::move(shard);
    if (shard_) {
      StageConfig config = config_;
      config.context_size = std::min(config.context_size, shard_->config().n_ctx_train);
      executor_ = std::make_unique<StageExecutor>(shard_, *pool_, config, *this);
    }
    // The requests that passed through the old range are lost here (their heads retry); routes
    // learned from now on were checked against the new range.
    std::lock_guard routes_lock(routes_mutex_);
    lost.swap(routes_);
  }
  for (const auto& [id, hops] : lost) fail_to_head(hops.head, id, "the stage was reassigned", self_id_);
  spdlog::info("holding layers [{}, {})", range.begin, range.end);
}

std::optional<LayerRange> StageHost::range() const {
  std::shared_lock lock(stage_mutex_);
  if (!shard_) return std::nullopt;
  return shard_->range();
}

StageStats StageHost::stats() const {
  std::shared_lock lock(stage_mutex_);
  return executor_ ? executor_->stats() : StageStats{};
}

size_t StageHost::requests() const {
  std::lock_guard lock(routes_mutex_);
  return routes_.size();
}

std::string StageHost::mismatch(const RouteHop& hop) const {
  if (hop.node_id != self_id_) {
    return fmt::format("{} is node {}, not node {} the route names", self_address_, self_id_, hop.node_id);
  }
  if (!shard_) return fmt::format("{} holds no layers (the route expects [{}, {}))", self_address_, hop.layer_begin, hop.layer_end);
  const LayerRange held = shard_->range();
  if (held.begin != hop.layer_begin || held.end != hop.layer_end) {
    return fmt::format("{} holds layers [{}, {}), not [{}, {}) as the route expects", self_address_, held.begin,
                       held.end, hop.layer_begin, hop.layer_end);
  }
  return {};
}

bool StageHost::learn(const StageRequestSetup& setup) {
  // This node's hop: the one naming it (a route passes a peer once; it may be reached at any of
  // its addresses), else the one at its address (a new process there: a stale route).
  auto self = std::find_if(setup.hops.begin(), setup.hops.end(), [&](const RouteHop& h) { return h.node_id == self_id_; });
  if (self == setup.hops.end()) {
    self = std::find_if(setup.hops.begin(), setup.hops.end(), [&](const RouteHop& h) { return h.address == self_address_; });
  }
  if (self == setup.hops.end()) {
    fail_to_head(setup.head, setup.id, fmt::format("{} is not on the request's route", self_address_));
    return false;
  }
  if (const std::string why = mismatch(*self); !why.empty()) {
    fail_to_head(setup.head, setup.id, why, self->node_id);
    return false;
  }
  Hops hops{setup.head, self + 1 == setup.hops.end() ? std::string() : (self + 1)->address, setup.report_hidden};
  std::lock_guard lock(routes_mutex_);
  routes_[setup.id] = std::move(hops);
  return true;
}

void StageHost::on_open(OpenMessage message) {
  std::shared_lock lock(stage_mutex_);
  const StageRequestSetup& setup = message.setup;
  if (setup.hops.empty() || (setup.hops.front().node_id != self_id_ && setup.hops.front().address != self_address_)) {
    fail_to_head(setup.head, setup.id, fmt::format("{} is not the first stage of the request's route", self_address_));
    return;
  }
  if (!learn(setup)) return;
  executor_->open(std::move(message.setup), std::move(message.prompt));
}

void StageHost::on_append(const AppendMessage& message) {
  std::shared_lock lock(stage_mutex_);
  if (executor_) executor_->append(message.request, message.position, message.token);
}

void StageHost::on_chunks(ChunksMessage message) {
  std::shared_lock lock(stage_mutex_);
  std::vector<StageChunk> accepted;
  std::map<std::string, ReportsMessage> reports;  // by head: digests of what this stage received
  const bool reports_inputs = config_.commit_top_k > 0 && config_.fault.kind != StageFaultKind::NoCommit;
  for (StageChunk& chunk : message.chunks) {
    if (chunk.setup) {
      if (!learn(*chunk.setup)) continue;
    }
    {
      std::lock_guard routes_lock(routes_mutex_);
      // Not learned here (the range changed since, or this process is new on the address): its
      // head has been told already, by the reassignment or by the failure of the old node.
      auto route = routes_.find(chunk.request);
      if (route == routes_.end()) continue;
      if (reports_inputs && shard_ && !chunk.hidden.empty()) {
        StageReport r;
        r.request = chunk.request;
        r.node_id = self_id_;
        r.layer_end = shard_->range().end;
        r.begin = chunk.begin;
        r.rows = int32_t(chunk.tokens.size());
        r.input_digest = input_digest(chunk.hidden);
        reports[route->second.head].reports.push_back(std::move(r));
      }
    }
    accepted.push_back(std::move(chunk));
  }
  if (executor_ && !accepted.empty()) executor_->receive(std::move(accepted));
  for (auto& [head, m] : reports) sender_.send(head, std::move(m));
}

void StageHost::on_release(const ReleaseMessage& message) {
  std::shared_lock lock(stage_mutex_);
  if (executor_) {
    executor_->release(message.request);  // passed on by released() once the executor got to it
    return;
  }
  released(message.request, /*final=*/true);
}

void StageHost::forward(std::vector<StageChunk> chunks) {
  // One message per next hop (requests of one step may follow different routes).
  std::map<std::string, ChunksMessage> by_next;
  std::map<std::string, ReportsMessage> reports;  // by head
  std::vector<std::pair<std::string, RequestId>> unroutable;
  {
    std::lock_guard lock(routes_mutex_);
    for (StageChunk& c : chunks) {
      auto it = routes_.find(c.request);
      if (it == routes_.end() || it->second.next.empty()) {
        if (it != routes_.end()) unroutable.emplace_back(it->second.head, c.request);
        continue;
      }
      if (!c.commitment.empty() || it->second.report_hidden) reports[it->second.head].reports.push_back(report(c, it->second));
      by_next[it->second.next].chunks.push_back(std::move(c));
    }
  }
  // Before the chunks, so that the head usually has them by the time the request ends.
  for (auto& [head, message] : reports) sender_.send(head, std::move(message));
  for (auto& [next, message] : by_next) {
    std::vector<RequestId> ids;
    for (const StageChunk& c : message.chunks) ids.push_back(c.request);
    if (sender_.send(next, std::move(message))) continue;
    std::lock_guard lock(routes_mutex_);
    for (RequestId id : ids) {
      auto it = routes_.find(id);
      if (it != routes_.end()) unroutable.emplace_back(it->second.head, id);
    }
  }
  for (const auto& [head, id] : unroutable) fail_to_head(head, id, "the next stage cannot be reached");
}

StageReport StageHost::report(StageChunk& chunk, const Hops& hops) const {
  StageReport r;
  r.request = chunk.request;
  r.node_id = self_id_;
  r.layer_end = shard_ ? shard_->range().end : 0;
  r.begin = chunk.begin;
  r.rows = int32_t(chunk.tokens.size());
  r.commitment = std::move(chunk.commitment);
  if (hops.report_hidden) {
    r.hidden = chunk.hidden;
    r.width = r.rows > 0 ? int32_t(chunk.hidden.size() / size_t(r.rows)) : 0;
  }
  return r;
}

void StageHost::sampled(std::vector<SampledToken> tokens) {
  std::map<std::string, TokensMessage> by_head;
  {
    std::lock_guard lock(routes_mutex_);
    for (SampledToken& t : tokens) {
      auto it = routes_.find(t.request);
      if (it == routes_.end()) continue;  // released meanwhile, or never routed here
      by_head[it->second.head].tokens.push_back(std::move(t));
    }
  }
  for (auto& [head, message] : by_head) {
    if (!sender_.send(head, std::move(message))) spdlog::warn("tokens for head {} dropped: unreachable", head);
  }
}

void StageHost::released(RequestId request, bool final) {
  std::string next;
  {
    std::lock_guard lock(routes_mutex_);
    auto it = routes_.find(request);
    if (it == routes_.end()) return;
    next = it->second.next;
    if (final) routes_.erase(it);  // a preempted request comes back along the same route
  }
  if (!next.empty()) sender_.send(next, ReleaseMessage{request});
}

void StageHost::fail_to_head(const std::string& head, RequestId request, const std::string& error,
                             const std::string& stale_node) {
  if (head.empty()) return;
  SampledToken t;
  t.request = request;
  t.error = error;
  t.stale_node = stale_node;
  sender_.send(head, TokensMessage{{std::move(t)}});
}

}  // namespace px::swarm
