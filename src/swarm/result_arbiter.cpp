// ResultVerifier's arbitration of --verify full: two routes of a request sampled different
// tokens. The head computes the token itself (its own copy of the whole model: the one party it
// trusts) and releases that; then, for each route that sampled another token, it finds out why
// by following the route stage by stage from the head's own rows. On one SIMD target an honest
// stage's output is a bit-exact function of its input, and its input is the previous stage's
// output as the link carried it (f32, f16 or bf16), which the stage's input digests confirm: so
// the first stage whose commitment no such input explains is the culprit, and a last stage whose
// token none explains (beyond a near-tie) is one too. Where the digests say the head's rebuilt
// input is close but not exact (another SIMD target upstream), only gross differences count. A
// route every stage of which checks out is honest: a near-tie moved (counted, no ban).
#include <spdlog/spdlog.h>

#include <cmath>

#include "core/thread_pool.h"
#include "model/model_shard.h"
#include "runtime/stage_replay.h"
#include "sampling/sampler.h"
#include "swarm/last_stage_check.h"
#include "swarm/result_verifier.h"

namespace px::swarm {
namespace {

int32_t sample_at(const TokenDispute& d, std::span<const float> logits, SampleInfo* info) {
  Sampler sampler(d.setup.sampling);
  const int n_top = d.setup.logprobs ? d.setup.top_logprobs : 0;
  return sampler.sample(logits, d.history, uint64_t(d.history.size()), d.setup.stream_id, info, n_top);
}

}  // namespace

void ResultVerifier::arbitrate(TokenDispute dispute, std::function<void(TokenVerdict)> done) {
  std::lock_guard lock(mutex_);
  disputes_.push_back({std::move(dispute), std::move(done), std::chrono::steady_clock::now() + config_.grace});
  wake_.notify_all();
}

bool ResultVerifier::commitments_in(const TokenDispute& dispute) const {
  const int rows = int(dispute.history.size());
  for (const TokenDispute::Claim& claim : dispute.claims) {
    auto tracked = tracked_.find(claim.wire);
    if (claim.hops.size() > 1 && tracked == tracked_.end()) return false;
    for (size_t i = 0; i < claim.hops.size(); ++i) {
      const StageKey key{claim.hops[i].layer_end, claim.hops[i].node_id};
      if (i + 1 < claim.hops.size()) {
        auto stage = tracked->second.stages.find(key);
        if (stage == tracked->second.stages.end() || assemble(stage->second).end_row < rows) return false;
      }
      if (i > 0) {
        auto digests = tracked->second.inputs.find(key);
        if (digests == tracked->second.inputs.end() || digests->second.empty()) return false;
        const auto& [begin, last] = *digests->second.rbegin();
        if (begin + last.rows < rows) return false;
      }
    }
  }
  return true;
}

TokenVerdict ResultVerifier::decide(const TokenDispute& dispute) {
  const int rows = int(dispute.history.size());
  if (rows == 0 || rows > config_.max_rows) {
    return {false, -1, {}, fmt::format("a dispute over {} positions (at most {} are recomputed)", rows, config_.max_rows)};
  }
  {
    std::lock_guard lock(mutex_);
    ++counts_.token_disputes;
  }
  TokenVerdict verdict;
  const std::vector<float> logits =
      replay_logits(shard_for(0, view_.config().n_layers), dispute.history, {}, *pool_);
  verdict.token = sample_at(dispute, logits, dispute.setup.logprobs ? &verdict.info : nullptr);
  verdict.decided = true;
  std::string claims;
  for (const TokenDispute::Claim& c : dispute.claims) claims += fmt::format(" {}", c.token);
  spdlog::warn("request {}: its two routes disagree at position {} (tokens {}); this head computes {}",
               dispute.request, rows, claims.substr(1), verdict.token);
  for (const TokenDispute::Claim& claim : dispute.claims) {
    const bool logprob_differs =
        dispute.setup.logprobs && std::abs(claim.logprob - verdict.info.logprob) > kLogprobTolerance;
    if (claim.token != verdict.token || logprob_differs) judge(dispute, claim, verdict.token);
  }
  return verdict;
}

void ResultVerifier::judge(const TokenDispute& dispute, const TokenDispute::Claim& claim, int32_t head_token) {
  const int rows = int(dispute.history.size());
  Tracked tracked;
  {
    std::lock_guard lock(mutex_);
    if (auto it = tracked_.find(claim.wire); it != tracked_.end()) tracked = it->second;
  }
  std::vector<float> chain;   // the route's output at the boundary reached, as the head explains it
  for (size_t i = 0; i < claim.hops.size(); ++i) {
    const RouteHop& hop = claim.hops[i];
    const StageKey key{hop.layer_end, hop.node_id};
    const auto shard = shard_for(hop.layer_begin, hop.layer_end);
    // The stage's possible inputs: none for the first; else the previous output as the link
    // rounded it — one rounding, when the stage's digests say the head has its input bit for bit
    // (the strict checks); all three when not (its upstream ran on another SIMD target, so the
    // head's chain is close, not exact: only a gross difference is evidence).
    std::vector<std::vector<float>> inputs;
    bool strict = i == 0;
    if (i == 0) {
      inputs.emplace_back();
    } else {
      auto digests = tracked.inputs.find(key);
      if (digests == tracked.inputs.end()) return strike(hop, fmt::format("sent no input digests for request {}", claim.wire));
      const std::optional<WireDType> received = received_as(digests->second, chain, config_.n_embd, rows);
      strict = received.has_value();
      for (WireDType dtype : kLinkDTypes) {
        if (!received || *received == dtype) inputs.push_back(carried_as(chain, dtype, config_.n_embd));
      }
      if (!strict) {
        std::lock_guard lock(mutex_);
        ++counts_.inexact_inputs;
      }
    }
    if (i + 1 == claim.hops.size()) {
      const SampledClaim sampled{rows, claim.token};
      const LastStageFinding f = check_sampled_tokens(shard, dispute.history, inputs, {&sampled, 1},
                                                      dispute.setup.sampling, dispute.setup.stream_id,
                                                      config_.token_margin, *pool_);
      if (f.explained()) {
        spdlog::info("request {}: the route through {} is honest (a near-tie its link or SIMD target moved)",
                     dispute.request, hop.node_id);
        std::lock_guard lock(mutex_);
        ++counts_.honest_differences;
        return;
      }
      if (!strict) {
        // The head rebuilt its input only closely (another SIMD target or dtype upstream): a
        // near-tie may have moved further than the margin. No verdict (the head's token stands).
        std::lock_guard lock(mutex_);
        ++counts_.unsettled;
        return;
      }
      return ban(hop, fmt::format("it sampled token {} at position {} of request {}, where its layers [{}, {}) give "
                                  "{} from its input (rebuilt bit for bit)",
                                  claim.token, rows, dispute.request, hop.layer_begin, hop.layer_end, head_token));
    }
    auto stage = tracked.stages.find(key);
    if (stage == tracked.stages.end()) return strike(hop, fmt::format("sent no commitments for request {}", claim.wire));
    const Assembled a = assemble(stage->second);
    if (!a.error.empty()) return ban(hop, a.error);
    if (a.first_row != 0 || a.end_row < rows) {
      return strike(hop, fmt::format("committed to rows [{}, {}) of the {} request {} computed", a.first_row, a.end_row,
                                     rows, claim.wire));
    }
    const StateCommitment commitment = slice_commitment(a.commitment, 0, rows);
    // The exact explanation first (computing each input only as far as needed); then one
    // within the tolerance of another SIMD target on the stage; from a close input, the gross
    // test only.
    std::vector<std::vector<float>> outputs;
    std::optional<std::vector<float>> explained;
    std::string why;
    for (const std::vector<float>& input : inputs) {
      outputs.push_back(replay_stage(shard, dispute.history, input, {rows}, *pool_));
      if (check_states(commitment, outputs.back(), CommitmentThresholds::exact()).ok) {
        explained = std::move(outputs.back());
        break;
      }
    }
    const CommitmentThresholds tolerances[] = {config_.thresholds, config_.thresholds.rows_only()};
    for (size_t t = 0; t < (strict ? 1u : 2u) && !explained; ++t) {
      for (std::vector<float>& out : outputs) {
        const CommitmentVerdict v = check_states(commitment, out, tolerances[t]);
        if (v.ok) {
          explained = std::move(out);
          break;
        }
        why = v.reason;
      }
    }
    if (!explained) {
      return ban(hop, fmt::format("its output of layers [{}, {}) for request {} matches no computation of those layers "
                                  "from its input ({}); its route sampled {} where this head samples {}",
                                  hop.layer_begin, hop.layer_end, claim.wire, why, claim.token, head_token));
    }
    chain = std::move(*explained);
  }
}

}  // namespace px::swarm
