#include "swarm/swarm_entry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace px::swarm {

SwarmEntry::SwarmEntry(ClusterView& view, MessageSender& sender, RequestHead& head, SwarmEntryConfig config)
    : view_(view), sender_(sender), head_(head), config_(std::move(config)), next_twin_(config_.first_twin_id) {
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

std::vector<ChosenRoute> SwarmEntry::choose_routes() const {
  std::vector<ChosenRoute> routes;
  std::optional<ChosenRoute> first = view_.choose_route();
  if (!first) return routes;
  routes.push_back(std::move(*first));
  if (!config_.paired) return routes;
  std::vector<std::string> avoid;
  for (const NodeAnnouncement& stage : routes.front().stages) avoid.push_back(stage.node_id);
  std::optional<ChosenRoute> second = view_.choose_route(avoid);
  if (!second) return {};
  routes.push_back(std::move(*second));
  return routes;
}

bool SwarmEntry::try_start(StageRequestSetup& setup, std::vector<int32_t>& tokens) {
  const std::vector<ChosenRoute> chosen = choose_routes();
  if (chosen.empty()) return false;
  const RequestId id = setup.id;
  setup.head = config_.self_address;
  InFlight f;
  std::vector<StageRequestSetup> setups;
  for (const ChosenRoute& route : chosen) {
    Route r;
    r.cost_seconds = route.cost_seconds;
    for (const NodeAnnouncement& stage : route.stages) {
      r.hops.push_back({stage.address, stage.node_id, stage.layer_begin, stage.layer_end});
      r.node_ids.push_back(stage.node_id);
    }
    r.relay_ids = route.relay_ids;
    r.first_hop = r.hops.front().address;
    r.first_sampled = int(tokens.size());
    setups.push_back(setup);
    setups.back().hops = r.hops;
    // Where this route's last stage reaches this head (through a relay when it accepts no connections).
    setups.back().head = route.head_address.empty() ? config_.self_address : route.head_address;
    f.routes.push_back(std::move(r));
  }
  f.setup = setup;
  if (config_.paired) f.history = tokens;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < f.routes.size(); ++i) {
      // The twin samples with the same seed and stream: an honest pair draws the same tokens.
      f.routes[i].wire = setups[i].id = i == 0 ? id : next_twin_++;
      if (i > 0) twins_[f.routes[i].wire] = id;
    }
    in_flight_[id] = f;
  }
  for (size_t i = 0; i < f.routes.size(); ++i) {
    const Route& r = f.routes[i];
    view_.route_started(r.node_ids, r.wire);
    std::vector<int32_t> history = i + 1 == f.routes.size() ? std::move(tokens) : tokens;
    if (!sender_.send(r.first_hop, OpenMessage{std::move(setups[i]), std::move(history)})) {
      fail(id, "the first stage " + r.first_hop + " cannot be reached");
    }
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
  std::vector<std::pair<std::string, RequestId>> targets;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    InFlight& f = it->second;
    if (config_.paired && position == int32_t(f.history.size())) f.history.push_back(token);
    for (const Route& r : f.routes) targets.emplace_back(r.first_hop, r.wire);
  }
  for (const auto& [first, wire] : targets) {
    if (!sender_.send(first, AppendMessage{wire, position, token})) {
      fail(request, "the first stage " + first + " cannot be reached");
    }
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
    for (size_t i = 1; i < f.routes.size(); ++i) twins_.erase(f.routes[i].wire);
  }
  for (const Route& r : f.routes) {
    view_.route_ended(r.node_ids);
    sender_.send(r.first_hop, ReleaseMessage{r.wire});  // a dead first stage frees nothing anyway
  }
}

void SwarmEntry::completed(RequestId request, const std::vector<int32_t>& tokens) {
  if (!config_.on_completed) return;
  std::vector<CompletedRoute> done;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    const InFlight& f = it->second;
    // A disputed pair ends with the head's token (the routes sampled others, or one did).
    const int sampled_end = f.disputed ? f.disputed_at : int(tokens.size());
    for (const Route& r : f.routes) done.push_back({r.wire, r.hops, f.setup, r.first_sampled, sampled_end, tokens});
  }
  for (const CompletedRoute& c : done) config_.on_completed(c);
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
  if (!config_.paired) return head_.on_tokens(std::move(tokens));
  std::vector<SampledToken> deliver;
  std::vector<TokenDispute> disputes;
  {
    std::lock_guard lock(mutex_);
    for (SampledToken& t : tokens) {
      int side = 0;
      if (auto twin = twins_.find(t.request); twin != twins_.end()) {
        t.request = twin->second;
        side = 1;
      }
      std::optional<TokenDispute> dispute;
      pair_token(t.request, side, std::move(t), deliver, dispute);
      if (dispute) disputes.push_back(std::move(*dispute));
    }
  }
  if (!deliver.empty()) head_.on_tokens(std::move(deliver));
  for (TokenDispute& d : disputes) {
    const RequestId head_id = d.request, twin = d.claims.back().wire;
    if (!config_.arbitrate) {
      settle(head_id, twin, TokenVerdict{false, -1, {}, "no arbiter"});
      continue;
    }
    config_.arbitrate(std::move(d), [this, head_id, twin](TokenVerdict v) { settle(head_id, twin, std::move(v)); });
  }
}

void SwarmEntry::pair_token(RequestId head_id, int side, SampledToken t, std::vector<SampledToken>& deliver,
                            std::optional<TokenDispute>& dispute) {
  auto it = in_flight_.find(head_id);
  // An error fails the pair (the head reopens both routes); anything for a request not paired
  // (or over) goes to the head, which knows what to ignore.
  if (it == in_flight_.end() || it->second.routes.size() < 2 || !t.error.empty()) return deliver.push_back(std::move(t));
  InFlight& f = it->second;
  if (f.disputed || t.position != int32_t(f.history.size())) return;  // being decided, or a duplicate
  f.next[side] = std::move(t);
  if (!f.next[0] || !f.next[1]) return;
  // With logprobs asked for they are part of the answer: a stage that perturbs its output without
  // changing the token still changes them.
  const bool agree = f.next[0]->token == f.next[1]->token &&
                     (!f.setup.logprobs || std::abs(f.next[0]->info.logprob - f.next[1]->info.logprob) <= kLogprobTolerance);
  if (agree) {
    deliver.push_back(std::move(*f.next[0]));
  } else {
    f.disputed = true;
    f.disputed_at = int(f.history.size());
    TokenDispute d;
    d.request = head_id;
    d.setup = f.setup;
    d.history = f.history;
    for (int i = 0; i < 2; ++i) {
      d.claims.push_back({f.routes[i].wire, f.routes[i].hops, f.next[i]->token, f.next[i]->info.logprob});
    }
    dispute = std::move(d);
  }
  f.next[0].reset();
  f.next[1].reset();
}

void SwarmEntry::settle(RequestId head_id, RequestId twin, TokenVerdict verdict) {
  int32_t position = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(head_id);
    // Moved meanwhile (a ban of one of its stages, a failure): the new routes compute it again.
    if (it == in_flight_.end() || !it->second.disputed || it->second.routes.back().wire != twin) return;
    position = int32_t(it->second.history.size());
  }
  std::vector<SampledToken> out;
  std::string error = verdict.error;
  if (verdict.decided) {
    out.push_back(SampledToken{head_id, position, verdict.token, std::move(verdict.info), {}, {}});
    // Counted as no attempt (the request made progress): one route holds another token.
    error = fmt::format("its two routes disagreed at position {}; the head computed it and the request "
                        "continues on new routes",
                        position);
  }
  out.push_back(SampledToken{head_id, position + 1, -1, {}, error, {}});
  head_.on_tokens(std::move(out));
}

double SwarmEntry::expected_seconds(RequestId request, int tokens) const {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(request);
  if (it == in_flight_.end()) return 0;
  double cost = 0;
  for (const Route& r : it->second.routes) cost = std::max(cost, r.cost_seconds);
  // Prefill runs many positions per pass (about 8 times a decoded token's rate on a CPU, less
  // counted here); then the margin of 4 covers batching with other requests and noise.
  return 4 * cost * (1 + tokens / 8.0);
}

void SwarmEntry::stalled(RequestId request) {
  std::vector<std::string> nodes;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(request);
    if (it == in_flight_.end()) return;
    for (const Route& r : it->second.routes) nodes.insert(nodes.end(), r.node_ids.begin(), r.node_ids.end());
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
      for (const Route& r : f.routes) {
        if (std::find(r.node_ids.begin(), r.node_ids.end(), node_id) == r.node_ids.end() &&
            std::find(r.relay_ids.begin(), r.relay_ids.end(), node_id) == r.relay_ids.end()) {
          continue;
        }
        lost.push_back(id);
        break;
      }
    }
  }
  if (!lost.empty()) spdlog::warn("peer {} failed: {} requests move to another pipeline", node_id, lost.size());
  for (RequestId id : lost) fail(id, "peer " + node_id + " failed");
}

bool SwarmEntry::wait_until_available(std::string& why) {
  const auto deadline = std::chrono::steady_clock::now() + config_.route_wait;
  while (choose_routes().empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      why = no_cover_message();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string SwarmEntry::no_cover_message() const {
  if (config_.paired && view_.choose_route()) {
    return fmt::format("--verify full runs every request on two pipelines with no node in common, and the swarm has "
                       "one (waited {} s for a second)",
                       config_.route_wait.count() / 1000.0);
  }
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
