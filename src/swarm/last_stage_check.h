#pragma once
// Whether a last stage's sampled tokens are what its layers give from its input. The last stage
// sends tokens, not hidden states, so nothing it commits to can be checked; but the head can run
// its layers itself, on the input the stage received as the head knows it (the rows its upstream
// neighbour committed to, rebuilt by a replay or by the head), and sample each position with the
// request's seed and stream. The head is not told the link's dtype, so it tries each rounding;
// and another SIMD target on the stage, or a reconstructed input that is close but not bit-exact,
// moves the logits a little: a token is also explained when raising its logit by `margin` makes
// the sampler pick it (a near-tie). Only a token that even then is not picked is evidence.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sampling/sampler.h"

namespace px {
class ModelShard;
class ThreadPool;
}  // namespace px

namespace px::swarm {

// The token at `position` of a request, as its last stage sampled it (from row position - 1).
struct SampledClaim {
  int position = 0;
  int32_t token = -1;
};

struct LastStageFinding {
  int checked = 0;           // claims looked at
  int near_ties = 0;         // explained only within the margin
  // The first claim no input explains even within the margin (-1: none), and what the head's
  // sampler gives there instead.
  int position = -1;
  int32_t claimed = -1;
  int32_t expected = -1;
  bool explained() const { return position < 0; }
};

// A near-tie's margin when the head has the stage's input bit for bit: ~5x the largest logit
// difference between SIMD targets measured on the synthetic Q8_0 model (0.021,
// LastStageCheck.ALastStageOnAnotherSimdTargetIsWithinTheDefaultMargin). From an input rebuilt
// only closely (another target upstream, then an f16 link) the logits moved up to 0.10 there,
// and after a q8 link and two more stages in a swarm test by more than 1: the verifier gives no
// verdict on such an input.
constexpr double kDefaultTokenMargin = 0.1;

// `shard`: the stage's layers (a last shard). `tokens`: the request's tokens, at least up to the
// last claim's position (exclusive). `inputs`: the stage's possible inputs, each [tokens.size(),
// n_embd] (one empty one when the shard is the whole model). `claims`: positions ascending, >= 1.
// Throws px::Error for claims out of order or beyond the tokens, or inputs of the wrong size.
LastStageFinding check_sampled_tokens(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                      const std::vector<std::vector<float>>& inputs,
                                      std::span<const SampledClaim> claims, const SamplingParams& sampling,
                                      uint64_t stream_id, double margin, ThreadPool& pool);

}  // namespace px::swarm
