#pragma once
// Runs one pipeline stage's layers over a token sequence the way a worker would (prefill in
// chunks, then one token at a time with the KV cache) or the way a verifier replays it (one
// prefill), and returns the stage's output hidden states [n, n_embd]. For the commitment tests.
#include <memory>
#include <span>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model_shard.h"

namespace px::test {

// `chunks`: how many positions each forward call takes, summing to tokens.size() (e.g. {n}: one
// prefill; {8, 1, 1, ...}: a prompt, then decode steps). `input`: the previous stage's output
// [n, n_embd] (not the first stage). The shard must not be the last one (it returns hidden states).
inline std::vector<float> run_stage(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                    std::span<const float> input, const std::vector<int>& chunks, int threads,
                                    int skipped_layer = -1) {
  const int width = shard->config().n_embd;
  const int n = int(tokens.size());
  if (shard->is_last()) fail("run_stage: the last stage returns logits, not hidden states");
  ThreadPool pool(threads);
  KvCache cache(shard->config(), shard->range(), n + 16);
  ForwardPass pass(shard, cache, pool);
  pass.set_skipped_layer(skipped_layer);
  std::vector<float> out;
  out.reserve(size_t(n) * width);
  ForwardBatch batch;
  ForwardResult result;
  int begin = 0;
  for (int count : chunks) {
    batch.clear();
    batch.add_tokens(0, tokens.subspan(begin, count), begin);
    if (!shard->is_first()) {
      const auto rows = input.subspan(size_t(begin) * width, size_t(count) * width);
      batch.hidden.assign(rows.begin(), rows.end());
    }
    pass.run(batch, result);
    out.insert(out.end(), result.values.begin(), result.values.end());
    begin += count;
  }
  if (begin != n) fail("run_stage: chunks cover {} of {} positions", begin, n);
  return out;
}

// A prompt of `prompt` positions, then one decode step per remaining position.
inline std::vector<int> prompt_then_decode(int prompt, int n) {
  std::vector<int> chunks{prompt};
  for (int i = prompt; i < n; ++i) chunks.push_back(1);
  return chunks;
}

}  // namespace px::test
