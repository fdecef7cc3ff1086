#pragma once
// Token sampling from logits. Randomness comes from a counter-based RNG keyed by
// (seed, stream, position): the same request samples the same token whatever the batching
// and whichever node holds the logits.
#include <cstdint>
#include <span>
#include <vector>

namespace px {

struct SamplingParams {
  float temperature = 0.8f;     // 0 = greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repetition_penalty = 1.0f;  // 1: off (divides positive logits, multiplies negative)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t penalty_last_n = 64;  // how much history the penalties see; -1: all
  uint64_t seed = 0;

  // Throws px::Error naming the parameter and its allowed range.
  void validate() const;
};

// A uniform double in [0, 1) that depends only on its three arguments.
double counter_uniform(uint64_t seed, uint64_t stream, uint64_t position);

class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  const SamplingParams& params() const { return params_; }

  // Samples the token at `position` (its index in the sequence) from `logits`;
  // `history` is the sequence so far (prompt and generated), used by the penalties.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 uint64_t position, uint64_t stream = 0);

 private:
  SamplingParams params_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused scratch
};

}  // namespace px
