#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace px {

// ---- Parameters ------------------------------------------------------------------------

void SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f)
    fail("sampling parameter temperature = {} is invalid: expected a finite value >= 0 "
         "(0 = greedy)", temperature);
  if (top_k < 0)
    fail("sampling parameter top_k = {} is invalid: expected an integer >= 0 (0 = off)", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f))
    fail("sampling parameter top_p = {} is invalid: expected a value in (0, 1] (1 = off)", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    fail("sampling parameter min_p = {} is invalid: expected a value in [0, 1] (0 = off)", min_p);
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0.0f)
    fail("sampling parameter repetition_penalty = {} is invalid: expected a finite value > 0 "
         "(1 = off)", repetition_penalty);
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    fail("sampling parameter presence_penalty = {} is invalid: expected a value in [-2, 2] "
         "(0 = off)", presence_penalty);
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    fail("sampling parameter frequency_penalty = {} is invalid: expected a value in [-2, 2] "
         "(0 = off)", frequency_penalty);
  if (penalty_last_n < -1)
    fail("sampling parameter penalty_last_n = {} is invalid: expected an integer >= -1 "
         "(-1 = whole history, 0 = off)", penalty_last_n);
}

// ---- Counter-based RNG -----------------------------------------------------------------

namespace {

// The splitmix64 finalizer: a bijection on 64 bits with full avalanche.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

double counter_uniform(uint64_t seed, uint64_t stream, uint64_t position) {
  // One round per key; each key is mixed with its own constant before it is absorbed so that
  // swapped keys or equal differences between keys do not collide.
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ mix64(stream + 0xd1b54a32d192ed03ULL));
  h = mix64(h ^ mix64(position + 0x8cb92ba72f3d8dd7ULL));
  h = mix64(h + 0xaef17502108ef2d9ULL);
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // top 53 bits: exactly representable
}

// ---- Sampler ---------------------------------------------------------------------------

namespace {

// Most likely first; equal logits go to the lowest id so every node orders them alike.
constexpr auto by_logit_then_id = [](const auto& a, const auto& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
};

}  // namespace

Sampler::Sampler(SamplingParams params) : params_(params) { params_.validate(); }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        uint64_t position, uint64_t stream) {
  return sample(logits, history, position, stream, nullptr, 0);
}

void Sampler::load_penalized_logits(std::span<const float> logits,
                                    std::span<const int32_t> history) {
  const size_t n_vocab = logits.size();
  candidates_.resize(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) {
    const float logit = logits[i];
    if (std::isnan(logit) || logit == std::numeric_limits<float>::infinity())
      fail("sampler: logit of token {} is {}; the model produced invalid output", i, logit);
    candidates_[i] = {logit, 0.0f, static_cast<int32_t>(i)};
  }

  const SamplingParams& p = params_;
  const bool penalties_off = p.repetition_penalty == 1.0f && p.frequency_penalty == 0.0f &&
                             p.presence_penalty == 0.0f;
  if (penalties_off || p.penalty_last_n == 0 || history.empty()) return;
  const size_t window = p.penalty_last_n < 0
                            ? history.size()
                            : std::min(history.size(), static_cast<size_t>(p.penalty_last_n));
  // Sorting a copy of the window groups equal tokens: each run is one distinct token.
  penalty_window_.assign(history.end() - static_cast<ptrdiff_t>(window), history.end());
  std::sort(penalty_window_.begin(), penalty_window_.end());
  for (size_t run = 0; run < penalty_window_.size();) {
    const int32_t token = penalty_window_[run];
    size_t end = run;
    while (end < penalty_window_.size() && penalty_window_[end] == token) ++end;
    const auto count = static_cast<float>(end - run);
    run = end;
    if (token < 0 || static_cast<size_t>(token) >= n_vocab)
      fail("sampler: history token {} is outside the vocabulary of {} logits", token, n_vocab);
    float& logit = candidates_[static_cast<size_t>(token)].logit;
    logit = logit > 0.0f ? logit / p.repetition_penalty : logit * p.repetition_penalty;
    logit -= count * p.frequency_penalty + p.presence_penalty;
  }
}

int32_t Sampler::sample_greedy() const {
  // Strict > keeps the lowest id among equal maxima.
  size_t best = 0;
  for (size_t i = 1; i < candidates_.size(); ++i)
    if (candidates_[i].logit > candidates_[best].logit) best = i;
  return candidates_[best].id;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        uint64_t position, uint64_t stream, SampleInfo* info, int32_t n_top) {
  if (logits.empty()) fail("sampler: got no logits (empty vocabulary)");
  if (n_top < 0) fail("sampler: n_top = {} is invalid: expected an integer >= 0", n_top);
  load_penalized_logits(logits, history);

  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  if (max_logit == -std::numeric_limits<float>::infinity())
    fail("sampler: all {} logits are -inf after penalties; no token can be sampled",
         logits.size());
  if (!std::isfinite(max_logit))
    fail("sampler: a penalized logit overflowed to {}; lower repetition_penalty", max_logit);

  const bool greedy = params_.temperature <= 0.0f;
  const float temperature = greedy ? 1.0f : params_.temperature;
  const size_t n_vocab = candidates_.size();
  const size_t n_report = info ? std::min(static_cast<size_t>(n_top), n_vocab) : 0;

  // log of the softmax denominator over the whole vocabulary, for the reported logprobs.
  double log_normalizer = 0.0;
  if (info) {
    double sum = 0.0;
    for (const Candidate& c : candidates_)
      sum += std::exp(double(c.logit - max_logit) / temperature);
    log_normalizer = double(max_logit) / temperature + std::log(sum);
  }
  const auto logprob_of = [&](float logit) {
    return static_cast<float>(double(logit) / temperature - log_normalizer);
  };

  int32_t chosen = 0;
  float chosen_logit = 0.0f;
  size_t n_kept = 0;  // candidates_[0, n_kept) are sorted and survive top-k
  if (greedy) {
    chosen = sample_greedy();
    chosen_logit = candidates_[static_cast<size_t>(chosen)].logit;
    if (n_report > 0)
      std::partial_sort(candidates_.begin(), candidates_.begin() + ptrdiff_t(n_report),
                        candidates_.end(), by_logit_then_id);
  } else {
    const size_t top_k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : n_vocab;
    n_kept = std::min(top_k, n_vocab);
    const size_t n_sorted = std::max(n_kept, n_report);
    if (n_sorted < n_vocab)
      std::partial_sort(candidates_.begin(), candidates_.begin() + ptrdiff_t(n_sorted),
                        candidates_.end(), by_logit_then_id);
    else
      std::sort(candidates_.begin(), candidates_.end(), by_logit_then_id);
    const size_t index = sample_sorted(n_kept, position, stream);
    chosen = candidates_[index].id;
    chosen_logit = candidates_[index].logit;
  }

  if (info) {
    info->logprob = logprob_of(chosen_logit);
    info->top.clear();
    for (size_t i = 0; i < n_report; ++i)
      info->top.push_back({candidates_[i].id, logprob_of(candidates_[i].logit)});
  }
  return chosen;
}

size_t Sampler::sample_sorted(size_t n_kept, uint64_t position, uint64_t stream) {
  // candidates_[0] holds the largest logit, so every weight is in [0, 1] and the first is 1.
  const float top_logit = candidates_[0].logit;
  const float inv_temperature = 1.0f / params_.temperature;
  double total = 0.0;
  for (size_t i = 0; i < n_kept; ++i) {
    Candidate& c = candidates_[i];
    c.weight = std::exp((c.logit - top_logit) * inv_temperature);
    total += c.weight;
  }

  // top-p: the smallest prefix holding at least top_p of the probability mass.
  if (params_.top_p < 1.0f) {
    const double needed = double(params_.top_p) * total;
    double cumulative = 0.0;
    size_t keep = 0;
    while (keep < n_kept) {
      cumulative += candidates_[keep++].weight;
      if (cumulative >= needed) break;
    }
    n_kept = std::max<size_t>(keep, 1);
  }

  // min-p: relative to the most likely token, whose weight is 1.
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p * candidates_[0].weight;
    size_t keep = 1;
    while (keep < n_kept && candidates_[keep].weight >= threshold) ++keep;
    n_kept = keep;
  }

  // Renormalize over the survivors and walk their cumulative distribution.
  double kept_total = 0.0;
  for (size_t i = 0; i < n_kept; ++i) kept_total += candidates_[i].weight;
  const double target = counter_uniform(params_.seed, stream, position) * kept_total;
  double cumulative = 0.0;
  for (size_t i = 0; i < n_kept; ++i) {
    cumulative += candidates_[i].weight;
    if (target < cumulative) return i;
  }
  // Rounding can leave target == cumulative at the very end: take the last token with mass.
  size_t last = n_kept - 1;
  while (last > 0 && candidates_[last].weight == 0.0f) --last;
  return last;
}

}  // namespace px
