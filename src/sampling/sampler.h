#pragma once
// Token sampling from logits. Randomness comes from a counter-based RNG keyed by
// (seed, stream, position): the same request samples the same token whatever the batching
// and whichever node holds the logits.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace px {

struct SamplingParams {
  float temperature = 0.8f;     // 0 = greedy
  int32_t top_k = 40;           // 0: off (negative is rejected by validate)
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repetition_penalty = 1.0f;  // 1: off (divides positive logits, multiplies negative)
  float presence_penalty = 0.0f;    // in [-2, 2], as in the OpenAI API
  float frequency_penalty = 0.0f;   // in [-2, 2], as in the OpenAI API
  int32_t penalty_last_n = 64;  // how much history the penalties see; -1: all, 0: none
  uint64_t seed = 0;

  // Throws px::Error naming the parameter, its value and its allowed range:
  // temperature >= 0 and finite, top_k >= 0, top_p in (0, 1], min_p in [0, 1],
  // repetition_penalty > 0 and finite, presence/frequency_penalty in [-2, 2],
  // penalty_last_n >= -1.
  void validate() const;
};

// A uniform double in [0, 1) with 53 random bits that depends only on its three arguments
// (the same on every platform and run): a splitmix64-style hash of the keys.
double counter_uniform(uint64_t seed, uint64_t stream, uint64_t position);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

// What the API reports alongside a sampled token (OpenAI-style logprobs). Log-probabilities
// are the log-softmax over the whole vocabulary of the penalized, temperature-scaled logits
// (temperature 1 when greedy); the top-k / top-p / min-p filters do not change them.
struct SampleInfo {
  float logprob = 0.0f;            // of the chosen token
  std::vector<TokenLogprob> top;   // the n_top most likely tokens, most likely first, ties by id
};

// Sampling order, for every call:
//   1. penalties, over the distinct tokens among the last penalty_last_n history tokens
//      (llama.cpp semantics): repetition (logit /= p if logit > 0, else logit *= p), then
//      frequency (logit -= count * frequency_penalty) and presence (logit -= presence_penalty);
//   2. temperature == 0: the exact argmax of the penalized logits, ties to the lowest id;
//   3. otherwise top-k (by logit, ties to the lowest id) -> temperature scaling -> softmax over
//      the survivors -> top-p (the smallest prefix whose cumulative probability >= top_p, at
//      least one token) -> min-p (keep p >= min_p * p_max) -> renormalize -> draw with
//      u = counter_uniform(seed, stream, position), walking the cumulative distribution of the
//      candidates sorted by probability descending, ties by id ascending (in practice sorted by
//      penalized logit descending, ties by id, which is the same order up to exp rounding).
// NaN or +inf logits, out-of-vocabulary history tokens, or all logits -inf throw px::Error.
// A Sampler keeps scratch space and is not thread-safe; use one per request (or per thread).
class Sampler {
 public:
  // Validates params (throws px::Error).
  explicit Sampler(SamplingParams params);
  const SamplingParams& params() const { return params_; }

  // Samples the token at `position` (its index in the sequence) from `logits`;
  // `history` is the sequence so far (prompt and generated), used by the penalties.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 uint64_t position, uint64_t stream = 0);

  // The same, and when `info` is not null fills it with the chosen token's logprob and the
  // n_top (>= 0) most likely alternatives. Reuses info->top's capacity.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 uint64_t position, uint64_t stream, SampleInfo* info, int32_t n_top = 0);

 private:
  struct Candidate {
    float logit;  // penalized (not yet temperature-scaled)
    float weight; // exp((logit - max) / temperature), an unnormalized probability
    int32_t id;
  };

  // Fills candidates_ in id order with the penalized logits.
  void load_penalized_logits(std::span<const float> logits, std::span<const int32_t> history);
  int32_t sample_greedy() const;
  // Applies temperature, top-p and min-p to the sorted candidates_[0, n_kept) and draws one;
  // returns its index in candidates_.
  size_t sample_sorted(size_t n_kept, uint64_t position, uint64_t stream);

  SamplingParams params_;
  std::vector<Candidate> candidates_;   // reused scratch, one per vocabulary entry
  std::vector<int32_t> penalty_window_; // reused scratch: the sorted recent history
};

}  // namespace px
