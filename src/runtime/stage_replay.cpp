#include "runtime/stage_replay.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/kv_cache.h"

namespace px {

std::vector<float> replay_stage(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                std::span<const float> input, const std::vector<int>& chunks, ThreadPool& pool,
                                int skipped_layer) {
  const int width = shard->config().n_embd;
  const int n = int(tokens.size());
  if (shard->is_last()) fail("replay_stage: the last stage returns logits, not hidden states");
  if (!shard->is_first() && input.size() != size_t(n) * size_t(width))
    fail("replay_stage: the input has {} values, expected {} positions x {}", input.size(), n, width);
  int covered = 0;
  for (int count : chunks) {
    if (count <= 0) fail("replay_stage: a chunk of {} positions", count);
    covered += count;
  }
  if (covered != n) fail("replay_stage: chunks cover {} of {} positions", covered, n);
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
  return out;
}

std::vector<float> replay_logits(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                 std::span<const float> input, ThreadPool& pool, std::span<const int> rows) {
  const int width = shard->config().n_embd;
  const int n = int(tokens.size());
  if (!shard->is_last()) fail("replay_logits: only the last stage returns logits");
  if (n == 0) fail("replay_logits: no tokens");
  if (!shard->is_first() && input.size() != size_t(n) * size_t(width))
    fail("replay_logits: the input has {} values, expected {} positions x {}", input.size(), n, width);
  KvCache cache(shard->config(), shard->range(), n + 16);
  ForwardPass pass(shard, cache, pool);
  ForwardBatch batch;
  batch.add_tokens(0, tokens, 0);
  if (!rows.empty()) {
    std::fill(batch.want_logits.begin(), batch.want_logits.end(), 0);
    int previous = -1;
    for (int r : rows) {
      if (r <= previous || r >= n) fail("replay_logits: row {} is not ascending within the {} positions", r, n);
      batch.want_logits[size_t(r)] = 1;
      previous = r;
    }
  }
  if (!shard->is_first()) batch.hidden.assign(input.begin(), input.end());
  ForwardResult result;
  pass.run(batch, result);
  const int want = rows.empty() ? 1 : int(rows.size());
  if (!result.is_logits || result.rows != want) fail("replay_logits: the forward pass returned {} logits rows, not {}", result.rows, want);
  return std::move(result.values);
}

std::vector<int> prompt_then_decode(int prompt, int n) {
  std::vector<int> chunks{prompt};
  for (int i = prompt; i < n; ++i) chunks.push_back(1);
  return chunks;
}

}  // namespace px
