#pragma once
// Generation for one sequence on a one-stage pipeline: prefill the prompt in chunks, then
// decode token by token. The serving runtime (continuous batching) builds on the same
// ForwardPass; this loop serves the CLI, the benchmarks and the tests.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sampling/sampler.h"

namespace px {

class ForwardPass;
class KvCache;

struct GenerateOptions {
  int max_tokens = 128;
  int prefill_chunk = 256;                   // prompt tokens per forward call
  SamplingParams sampling;
  std::function<bool(int32_t)> is_stop_token;  // generation ends (token not emitted) when true
  uint64_t stream = 0;                        // RNG stream: keeps n > 1 choices of one seed apart
  // Per-token logprobs: when on_sample is set it is called (after on_token) with each
  // generated token and its SampleInfo, filled with top_logprobs alternatives when logprobs
  // is true (otherwise logprob 0 and no alternatives); returning false stops early.
  bool logprobs = false;
  int top_logprobs = 0;
  std::function<bool(int32_t, const SampleInfo&)> on_sample;
  // Polled between prefill chunks and before each decode step (cancellation, timeouts):
  // generation ends early when it returns true.
  std::function<bool()> should_stop;
};

struct GenerateStats {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;   // from the first sampled token to the last
  double prefill_tps() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tps() const;
};

// Generates up to max_tokens after `prompt` in sequence `seq` (its cache entry is reset
// first). on_token is called with each generated token; returning false stops early.
std::vector<int32_t> generate(ForwardPass& pass, KvCache& cache, int seq,
                              std::span<const int32_t> prompt, const GenerateOptions& options,
                              const std::function<bool(int32_t)>& on_token = {},
                              GenerateStats* stats = nullptr);

}  // namespace px
