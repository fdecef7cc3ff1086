#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "model/forward.h"

namespace px {

double GenerateStats::decode_tps() const {
  // The first generated token comes from the prefill's logits; decode steps are the rest.
  return decode_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_seconds : 0;
}

std::vector<int32_t> generate(ForwardPass& pass, KvCache& cache, int seq,
                              std::span<const int32_t> prompt, const GenerateOptions& options,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) fail("the prompt is empty (no tokens to start from)");
  if (int64_t(prompt.size()) >= cache.n_ctx()) {
    fail("the prompt has {} tokens, which does not fit the context of {} tokens", prompt.size(),
         cache.n_ctx());
  }
  if (options.max_tokens < 0) fail("max_tokens must be >= 0, got {}", options.max_tokens);
  options.sampling.validate();
  const int max_tokens = std::min<int64_t>(options.max_tokens, cache.n_ctx() - int64_t(prompt.size()));

  cache.remove(seq);
  Sampler sampler(options.sampling);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<int32_t> generated;
  ForwardBatch batch;
  ForwardResult result;

  const auto t0 = Clock::now();
  const int chunk = std::max(1, options.prefill_chunk);
  bool prefilled = true;
  for (size_t begin = 0; begin < prompt.size(); begin += chunk) {
    const size_t count = std::min<size_t>(chunk, prompt.size() - begin);
    if (options.should_stop && options.should_stop()) {
      prefilled = false;
      break;
    }
    batch.clear();
    batch.add_tokens(seq, prompt.subspan(begin, count), static_cast<int>(begin));
    pass.run(batch, result);
  }
  SampleInfo info;
  const auto t1 = Clock::now();

  while (prefilled && int(generated.size()) < max_tokens) {
    if (options.should_stop && options.should_stop()) break;
    const int32_t token = sampler.sample(result.row(result.rows - 1), history, history.size(),
                                         options.stream, options.logprobs ? &info : nullptr,
                                         options.logprobs ? options.top_logprobs : 0);
    if (options.is_stop_token && options.is_stop_token(token)) break;
    generated.push_back(token);
    history.push_back(token);
    if (on_token && !on_token(token)) break;
    if (options.on_sample && !options.on_sample(token, info)) break;
    if (int(generated.size()) == max_tokens) break;
    batch.clear();
    batch.add_tokens(seq, std::span(&history.back(), 1), static_cast<int>(history.size()) - 1);
    pass.run(batch, result);
  }
  const auto t2 = Clock::now();

  if (stats) {
    stats->prompt_tokens = static_cast<int>(prompt.size());
    stats->generated_tokens = static_cast<int>(generated.size());
    stats->prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    stats->decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  }
  return generated;
}

}  // namespace px
