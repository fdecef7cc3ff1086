#include "swarm/result_verifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "model/model_shard.h"
#include "runtime/stage_replay.h"
#include "sampling/sampler.h"
#include "swarm/input_digest.h"
#include "swarm/q8_rows.h"

namespace px::swarm {
namespace {

constexpr size_t kMaxStagesPerRequest = 64;

}  // namespace

std::vector<float> carried_as(std::span<const float> rows, WireDType dtype, int width) {
  if (dtype == WireDType::Q8) return q8_round_trip(rows, width);
  std::vector<float> out;
  out.reserve(rows.size());
  for (float v : rows) {
    if (dtype == WireDType::F16) v = fp16_to_f32(f32_to_fp16(v));
    if (dtype == WireDType::BF16) v = bf16_to_f32(f32_to_bf16(v));
    out.push_back(v);
  }
  return out;
}

// A stage's commitments put together in row order: the longest contiguous run, ending where the
// stage's last chunk ended. A preempted request sends rows from 0 again; later chunks win.
ResultVerifier::Assembled ResultVerifier::assemble(const Chunks& chunks) {
  Assembled out;
  bool started = false;
  for (const auto& [begin, chunk] : chunks) {
    StateCommitment c;
    try {
      c = parse_commitment(chunk.bytes);
    } catch (const Error& e) {
      out.error = fmt::format("its commitment of rows from {} is malformed: {}", begin, e.what());
      return out;
    }
    if (c.rows() != chunk.rows) {
      out.error = fmt::format("its commitment of rows from {} has {} rows, the chunk {}", begin, c.rows(), chunk.rows);
      return out;
    }
    if (started && begin < out.end_row) continue;  // inside what is assembled (a preemption's repeat)
    if (!started || begin > out.end_row || c.width != out.commitment.width || c.k != out.commitment.k) {
      out.commitment = std::move(c);  // a gap: start again from here
      out.first_row = begin;
    } else {
      append_commitment(out.commitment, c);
    }
    started = true;
    out.end_row = out.first_row + out.commitment.rows();
  }
  return out;
}

std::optional<WireDType> ResultVerifier::received_as(const Chunks& digests, std::span<const float> rows, int width,
                                                    int n_rows) {
  if (rows.size() < size_t(n_rows) * size_t(width)) return std::nullopt;
  for (WireDType dtype : kLinkDTypes) {
    int covered = 0;  // rows [0, covered) matched; chunks come in row order (a repeat starts lower)
    bool all_match = true;
    for (const auto& [begin, chunk] : digests) {
      if (begin + chunk.rows > n_rows) continue;  // beyond what is checked
      const auto span = rows.subspan(size_t(begin) * width, size_t(chunk.rows) * width);
      if (input_digest(carried_as(span, dtype, width)) != chunk.bytes) {
        all_match = false;
        break;
      }
      if (begin <= covered) covered = std::max(covered, begin + chunk.rows);
    }
    if (all_match && covered >= n_rows) return dtype;
  }
  return std::nullopt;
}

ResultVerifier::ResultVerifier(ClusterView& view, MessageSender& sender, VerifierConfig config,
                               std::function<void(const std::string&)> on_ban)
    : view_(view),
      sender_(sender),
      config_(std::move(config)),
      on_ban_(std::move(on_ban)),
      pool_(std::make_unique<ThreadPool>(std::max(1, config_.threads))),
      next_id_(config_.first_id) {
  thread_ = std::thread([this] { loop(); });
}

ResultVerifier::~ResultVerifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool ResultVerifier::sampled(RequestId request) const {
  // A function of the seed and the id, unknown to the stages that serve the request.
  return counter_uniform(config_.seed, request, 0) < config_.rate;
}

void ResultVerifier::on_reports(std::vector<StageReport> reports) {
  bool replay_progress = false;
  std::lock_guard lock(mutex_);
  for (StageReport& r : reports) {
    if (auto it = replays_.find(r.request); it != replays_.end()) {
      Replay& replay = it->second;
      if (!r.input_digest.empty()) continue;  // the replay's own stages' inputs: the head sent them
      for (Boundary& b : replay.boundaries) {
        if (b.replayed.layer_end != r.layer_end || b.replayed.node_id != r.node_id) continue;
        const int n = int(replay.tokens.size());
        if (r.width != replay.width || r.hidden.size() != size_t(r.rows) * size_t(r.width) || r.begin + r.rows > n) {
          replay.failed = true;  // a replica sending nonsense is no basis for a verdict
          break;
        }
        std::copy(r.hidden.begin(), r.hidden.end(), b.rows.begin() + ptrdiff_t(r.begin) * r.width);
        for (int i = r.begin; i < r.begin + r.rows; ++i) {
          if (!b.have[i]) b.have[i] = true, --b.missing;
        }
        replay_progress = true;
      }
      continue;
    }
    if (r.commitment.empty() && r.input_digest.empty()) continue;
    auto [it, fresh] = tracked_.try_emplace(r.request);
    if (fresh) {
      tracked_order_.push_back(r.request);
      while (int(tracked_order_.size()) > config_.max_tracked) {
        tracked_.erase(tracked_order_.front());
        tracked_order_.pop_front();
      }
    }
    // Bounded whatever peers send: a route's stages, and a request's chunks at each.
    auto& stages = r.input_digest.empty() ? it->second.stages : it->second.inputs;
    const StageKey key{r.layer_end, r.node_id};
    if (!stages.count(key) && stages.size() >= kMaxStagesPerRequest) continue;
    auto& stage = stages[key];
    if (!stage.count(r.begin) && int(stage.size()) >= config_.max_rows) continue;
    stage[r.begin] = Chunk{r.rows, r.input_digest.empty() ? std::move(r.commitment) : std::move(r.input_digest)};
  }
  if (replay_progress) wake_.notify_all();
}

void ResultVerifier::completed(const CompletedRoute& done) {
  std::lock_guard lock(mutex_);
  ++counts_.completed;
  if (!sampled(done.wire) || done.hops.size() < 2) {
    tracked_.erase(done.wire);  // its id stays in tracked_order_ until evicted: harmless
    return;
  }
  ++counts_.sampled;
  if (int(jobs_.size()) >= config_.max_queued) {
    ++counts_.skipped_busy;
    tracked_.erase(done.wire);
    return;
  }
  jobs_.push_back({done, std::chrono::steady_clock::now() + config_.grace});
  wake_.notify_all();
}

bool ResultVerifier::on_token(const SampledToken& token) {
  std::lock_guard lock(mutex_);
  auto it = replays_.find(token.request);
  if (it == replays_.end()) return false;
  if (!token.error.empty()) {
    spdlog::info("verification replay {} failed on its route: {}", token.request, token.error);
    it->second.failed = true;
  }
  wake_.notify_all();
  return true;
}

void ResultVerifier::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    // Replays whose rows are all in, failed or out of time.
    std::vector<Replay> done;
    for (auto it = replays_.begin(); it != replays_.end();) {
      Replay& r = it->second;
      if (!r.all_rows_in() && !r.failed && now < r.deadline) {
        ++it;
        continue;
      }
      done.push_back(std::move(r));
      it = replays_.erase(it);
    }
    std::vector<Job> due;
    while (!jobs_.empty() && jobs_.front().due <= now && int(replays_.size() + due.size()) < config_.max_replays) {
      due.push_back(std::move(jobs_.front()));
      jobs_.pop_front();
    }
    std::vector<PendingDispute> disputes;
    for (auto it = disputes_.begin(); it != disputes_.end();) {
      if (now < it->due && !commitments_in(it->dispute)) {
        ++it;
        continue;
      }
      disputes.push_back(std::move(*it));
      it = disputes_.erase(it);
    }
    if (done.empty() && due.empty() && disputes.empty()) continue;
    lock.unlock();
    // Disputes first: a request waits on each.
    for (PendingDispute& d : disputes) {
      TokenVerdict verdict;
      try {
        verdict = decide(d.dispute);
      } catch (const std::exception& e) {
        verdict.error = fmt::format("the head could not compute the token itself: {}", e.what());
        spdlog::warn("request {}: {}", d.dispute.request, verdict.error);
      }
      d.done(std::move(verdict));
    }
    for (Replay& r : done) {
      sender_.send(r.hops.front().address, ReleaseMessage{r.id});
      if (r.all_rows_in() && !r.failed) {
        try {
          evaluate(r);
        } catch (const std::exception& e) {
          spdlog::warn("verification of request {} could not finish: {}", r.original, e.what());
        }
      } else {
        std::lock_guard count_lock(mutex_);
        ++counts_.abandoned;
      }
    }
    for (Job& job : due) start(std::move(job));
    lock.lock();
  }
}

void ResultVerifier::start(Job job) {
  const CompletedRoute& done = job.route;
  // Another route, avoiding every stage whose output is to be checked (all but the last). None
  // free now (every replica busy): try again a little later, a few times.
  std::vector<std::string> avoid;
  for (size_t i = 0; i + 1 < done.hops.size(); ++i) avoid.push_back(done.hops[i].node_id);
  const std::optional<ChosenRoute> route = view_.choose_route(avoid);
  if (!route && job.route_tries < config_.route_tries) {
    ++job.route_tries;
    job.due = std::chrono::steady_clock::now() + config_.route_retry;
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    return;
  }
  Tracked tracked;
  {
    std::lock_guard lock(mutex_);
    if (auto it = tracked_.find(done.wire); it != tracked_.end()) {
      tracked = std::move(it->second);
      tracked_.erase(it);
    }
  }
  // The original route's commitments, stage by stage (the last stage sends none).
  Replay replay;
  replay.original = done.wire;
  std::vector<std::pair<RouteHop, Assembled>> committed;
  int end_row = std::numeric_limits<int>::max();
  for (size_t i = 0; i + 1 < done.hops.size(); ++i) {
    const RouteHop& hop = done.hops[i];
    auto it = tracked.stages.find({hop.layer_end, hop.node_id});
    if (it == tracked.stages.end()) {
      // Reports of another route (an earlier attempt) under another id never land here; a stage
      // of the final route with none at all did not commit.
      strike(hop, fmt::format("sent no commitments for request {}", done.wire));
      return;
    }
    Assembled a = assemble(it->second);
    if (a.error.empty() && a.commitment.width != config_.n_embd)
      a.error = fmt::format("it commits to rows of {} values; the model's are {}", a.commitment.width, config_.n_embd);
    if (!a.error.empty()) return ban(hop, a.error);
    end_row = std::min(end_row, a.end_row);
    committed.emplace_back(hop, std::move(a));
  }
  if (end_row > int(done.tokens.size()) || end_row <= 0) {
    std::lock_guard lock(mutex_);
    ++counts_.skipped_multi_route;  // rows beyond what the request computed: not one route's work
    return;
  }
  if (end_row > config_.max_rows) {
    std::lock_guard lock(mutex_);
    ++counts_.skipped_too_long;
    return;
  }
  if (route) {
    for (const NodeAnnouncement& s : route->stages) replay.hops.push_back({s.address, s.node_id, s.layer_begin, s.layer_end});
  }
  auto inputs_of = [&](const RouteHop& hop) {
    auto it = tracked.inputs.find({hop.layer_end, hop.node_id});
    return it == tracked.inputs.end() ? Chunks{} : std::move(it->second);
  };
  for (auto& [hop, a] : committed) {
    const auto other = std::find_if(replay.hops.begin(), replay.hops.end(), [&](const RouteHop& h) {
      return h.layer_end == hop.layer_end && h.node_id != hop.node_id;
    });
    if (other == replay.hops.end() || a.first_row >= end_row) continue;
    Boundary b;
    b.original = hop;
    b.replayed = *other;
    b.original_inputs = inputs_of(hop);
    b.first_row = a.first_row;
    b.commitment = slice_commitment(a.commitment, 0, end_row - a.first_row);
    b.rows.assign(size_t(end_row) * size_t(a.commitment.width), 0.0f);
    b.have.assign(size_t(end_row), false);
    b.missing = end_row;
    replay.width = a.commitment.width;
    replay.boundaries.push_back(std::move(b));
  }
  if (replay.boundaries.empty()) {
    std::lock_guard lock(mutex_);
    ++counts_.skipped_no_route;
    return;
  }
  replay.tokens.assign(done.tokens.begin(), done.tokens.begin() + end_row);
  // The last stage's tokens that the replay's rows reach (the token at p comes from row p - 1),
  // at most max_checked_tokens of them, picked by a hash the stages do not know.
  replay.last = done.hops.back();
  replay.last_inputs = inputs_of(replay.last);
  replay.sampling = done.setup.sampling;
  replay.stream_id = done.setup.stream_id;
  std::vector<std::pair<double, int>> positions;
  const int sampled_end = std::min(done.sampled_end, int(done.tokens.size()));
  for (int p = std::max(1, done.first_sampled); p <= end_row && p < sampled_end; ++p)
    positions.emplace_back(counter_uniform(config_.seed ^ 0x6c617374ULL, done.wire, uint64_t(p)), p);
  if (int(positions.size()) > config_.max_checked_tokens) {
    std::nth_element(positions.begin(), positions.begin() + config_.max_checked_tokens, positions.end());
    positions.resize(size_t(config_.max_checked_tokens));
  }
  std::sort(positions.begin(), positions.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [key, p] : positions) replay.claims.push_back({p, done.tokens[size_t(p)]});
  replay.deadline = std::chrono::steady_clock::now() + config_.replay_timeout;
  StageRequestSetup setup;
  setup.sampling.temperature = 0;  // the last stage samples once; nobody reads it
  setup.reuse_prefix = false;      // every row is recomputed and reported
  setup.report_hidden = true;
  setup.head = route && !route->head_address.empty() ? route->head_address : config_.self_address;
  setup.hops = replay.hops;
  std::vector<int32_t> prompt = replay.tokens;
  {
    std::lock_guard lock(mutex_);
    replay.id = setup.id = next_id_++;
    setup.stream_id = setup.id;
    ++counts_.replayed;
    counts_.replayed_rows += end_row;
    replays_[replay.id] = std::move(replay);
  }
  const std::string first = setup.hops.front().address;
  const RequestId id = setup.id;
  if (!sender_.send(first, OpenMessage{std::move(setup), std::move(prompt)})) {
    std::lock_guard lock(mutex_);
    if (auto it = replays_.find(id); it != replays_.end()) it->second.failed = true;
  }
}

void ResultVerifier::evaluate(Replay& replay) {
  const int width = replay.width;
  for (size_t i = 0; i < replay.boundaries.size(); ++i) {
    Boundary& b = replay.boundaries[i];
    const std::span<const float> replayed = std::span<const float>(b.rows).subspan(size_t(b.first_row) * width);
    const CommitmentVerdict verdict = check_states(b.commitment, replayed, config_.thresholds);
    if (verdict.ok) continue;
    spdlog::warn("verification of request {}: node {} and node {} disagree on the output of layers [{}, {}) ({}); "
                 "recomputing it here",
                 replay.original, b.original.node_id, b.replayed.node_id, b.original.layer_begin, b.original.layer_end,
                 verdict.reason);
    {
      std::lock_guard lock(mutex_);
      ++counts_.disputes;
    }
    // The original stage got its input as its upstream neighbour sent it, rounded by the link;
    // the head has the replica's rows there, which its digests say are (under one rounding)
    // exactly what it received — or not, when the replica runs another SIMD target than that
    // neighbour: then only a gross difference is evidence. The replica got the replay's rows,
    // which the head has exactly, under one of the roundings.
    std::optional<WireDType> received;
    bool judged_strictly = b.original.layer_begin == 0;
    if (!judged_strictly && i > 0 && replay.boundaries[i - 1].original.layer_end == b.original.layer_begin) {
      if (b.original_inputs.empty()) return strike(b.original, fmt::format("sent no input digests for request {}", replay.original));
      const int n = int(replay.tokens.size());
      received = received_as(b.original_inputs, replay.boundaries[i - 1].rows, width, n);
      judged_strictly = received.has_value();
    }
    const CommitmentThresholds original_thresholds =
        judged_strictly ? config_.thresholds : config_.thresholds.rows_only();
    CommitmentVerdict original, replica;
    original.ok = replica.ok = false;
    for (WireDType input : kLinkDTypes) {
      const bool for_original = !original.ok && (!received || *received == input);
      if (!for_original && replica.ok) continue;
      const std::vector<float> mine = recompute(replay, i, input);
      if (mine.empty()) {
        std::lock_guard lock(mutex_);
        ++counts_.unsettled;
        return;
      }
      const std::span<const float> my_rows = std::span<const float>(mine).subspan(size_t(b.first_row) * width);
      if (for_original) original = check_states(b.commitment, my_rows, original_thresholds);
      if (!replica.ok) replica = check_states(commit_states(replayed, width, b.commitment.k), my_rows, config_.thresholds);
      if ((original.ok && replica.ok) || b.original.layer_begin == 0) break;  // the first stage has no input
    }
    if (!original.ok) {
      ban(b.original, fmt::format("its output of layers [{}, {}) for request {} contradicts this head's own "
                                  "recompute: {}",
                                  b.original.layer_begin, b.original.layer_end, replay.original, original.reason));
    }
    if (!replica.ok) {
      ban(b.replayed, fmt::format("its replay of layers up to {} contradicts this head's own recompute: {}",
                                  b.replayed.layer_end, replica.reason));
    }
    const bool cleared = original.ok && replica.ok;  // two honest replicas apart by float noise
    {
      std::lock_guard lock(mutex_);
      if (!judged_strictly) ++counts_.inexact_inputs;
      if (cleared) ++counts_.cleared;
    }
    // Later boundaries, and the last stage's tokens, were computed from this one on both routes:
    // checking them against the replica's rows would show the same honest noise again, amplified.
    if (cleared) {
      std::lock_guard lock(mutex_);
      ++counts_.passed;
      ++counts_.last_stage_unchecked;
    }
    return;
  }
  if (!check_last_stage(replay)) return;
  std::lock_guard lock(mutex_);
  ++counts_.passed;
}

bool ResultVerifier::check_last_stage(const Replay& replay) {
  if (replay.claims.empty()) return true;
  const auto input = std::find_if(replay.boundaries.begin(), replay.boundaries.end(),
                                  [&](const Boundary& b) { return b.original.layer_end == replay.last.layer_begin; });
  if (input == replay.boundaries.end()) {
    std::lock_guard lock(mutex_);
    ++counts_.last_stage_unchecked;  // the replay's route has no boundary there
    return true;
  }
  if (replay.last_inputs.empty()) {
    strike(replay.last, fmt::format("sent no input digests for request {}", replay.original));
    return false;
  }
  // The replay's rows at the last stage's input matched its upstream neighbour's commitment;
  // the digests say whether they are exactly what the last stage received. If not (another SIMD
  // target or link dtype upstream — or rows a replica made up to frame it), the logits can move
  // by more than any fixed margin (on the synthetic test model, after a q8 link): no verdict.
  const int n = replay.claims.back().position;
  const std::optional<WireDType> received = received_as(replay.last_inputs, input->rows, replay.width, n);
  if (!received) {
    std::lock_guard lock(mutex_);
    ++counts_.inexact_inputs;
    ++counts_.last_stage_unchecked;
    return true;
  }
  const std::vector<std::vector<float>> inputs = {carried_as(input->rows, *received, replay.width)};
  const LastStageFinding f =
      check_sampled_tokens(shard_for(replay.last.layer_begin, replay.last.layer_end), replay.tokens, inputs,
                           replay.claims, replay.sampling, replay.stream_id, config_.token_margin, *pool_);
  {
    std::lock_guard lock(mutex_);
    counts_.last_stage_tokens += f.checked;
    counts_.last_stage_near_ties += f.near_ties;
  }
  if (f.explained()) return true;
  ban(replay.last, fmt::format("it sampled token {} at position {} of request {}, where its layers [{}, {}) give {} "
                               "from its input (a replay's rows bit for bit as it received them)",
                               f.claimed, f.position, replay.original, replay.last.layer_begin, replay.last.layer_end,
                               f.expected));
  return false;
}

std::vector<float> ResultVerifier::recompute(const Replay& replay, size_t boundary, WireDType input_dtype) {
  const Boundary& b = replay.boundaries[boundary];
  const LayerRange range{b.original.layer_begin, b.original.layer_end};
  // The input: the replay's rows at the boundary before (which matched the original there).
  std::span<const float> input;
  if (range.begin > 0) {
    if (boundary == 0 || replay.boundaries[boundary - 1].original.layer_end != range.begin) {
      spdlog::warn("verification of request {}: no agreed input for layers [{}, {}); the dispute stays open",
                   replay.original, range.begin, range.end);
      return {};
    }
    input = replay.boundaries[boundary - 1].rows;
  }
  return replay_stage(shard_for(range.begin, range.end), replay.tokens, carried_as(input, input_dtype, replay.width),
                      {int(replay.tokens.size())}, *pool_);
}

std::shared_ptr<const ModelShard> ResultVerifier::shard_for(int begin, int end) {
  auto it = shards_.find({begin, end});
  if (it != shards_.end()) return it->second;
  if (shards_.size() >= 4) shards_.clear();  // a few ranges at a time: memory, not speed, bounds this
  return shards_[{begin, end}] = ModelShard::load(config_.model_path, LayerRange{begin, end});
}

void ResultVerifier::ban(const RouteHop& hop, const std::string& reason) {
  if (view_.banned(hop.node_id)) return;  // replays that were running when it was caught
  spdlog::warn("banning node {} ({}) for {} s: {}", hop.node_id, hop.address, config_.ban_for.count(), reason);
  view_.ban(hop.node_id, hop.address, std::chrono::steady_clock::now() + config_.ban_for, reason);
  {
    std::lock_guard lock(mutex_);
    bans_.push_back({hop.node_id, hop.address, reason, std::chrono::system_clock::now()});
  }
  if (on_ban_) on_ban_(hop.node_id);
}

void ResultVerifier::strike(const RouteHop& hop, const std::string& why) {
  int strikes = 0;
  {
    std::lock_guard lock(mutex_);
    ++counts_.missing_commitments;
    strikes = ++strikes_[hop.node_id];
  }
  spdlog::warn("node {} {} ({} of {} allowed)", hop.node_id, why, strikes, config_.missing_strikes);
  if (strikes >= config_.missing_strikes) ban(hop, fmt::format("{} sampled requests without commitments", strikes));
}

nlohmann::json ResultVerifier::to_json() const {
  std::lock_guard lock(mutex_);
  nlohmann::json bans = nlohmann::json::array();
  for (const BanRecord& b : bans_) {
    bans.push_back({{"id", b.node_id},
                    {"address", b.address},
                    {"reason", b.reason},
                    {"at_unix", std::chrono::duration_cast<std::chrono::seconds>(b.at.time_since_epoch()).count()}});
  }
  return {{"rate", config_.rate},
          {"mode", config_.full ? "full" : "sample"},
          {"completed", counts_.completed},
          {"sampled", counts_.sampled},
          {"replayed", counts_.replayed},
          {"replayed_rows", counts_.replayed_rows},
          {"passed", counts_.passed},
          {"disputes", counts_.disputes},
          {"cleared", counts_.cleared},
          {"unsettled", counts_.unsettled},
          {"abandoned", counts_.abandoned},
          {"missing_commitments", counts_.missing_commitments},
          {"token_disputes", counts_.token_disputes},
          {"inexact_inputs", counts_.inexact_inputs},
          {"last_stage", {{"tokens", counts_.last_stage_tokens},
                          {"near_ties", counts_.last_stage_near_ties},
                          {"unchecked", counts_.last_stage_unchecked}}},
          {"honest_differences", counts_.honest_differences},
          {"skipped", {{"no_second_route", counts_.skipped_no_route},
                       {"several_routes", counts_.skipped_multi_route},
                       {"too_long", counts_.skipped_too_long},
                       {"busy", counts_.skipped_busy}}},
          {"in_flight", replays_.size()},
          {"queued", jobs_.size()},
          {"bans", bans}};
}

}  // namespace px::swarm
