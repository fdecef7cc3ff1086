#pragma once
// The commitment tests' way to run a stage: runtime/stage_replay.h with a pool of its own.
#include "core/thread_pool.h"
#include "runtime/stage_replay.h"

namespace px::test {

inline std::vector<float> run_stage(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                    std::span<const float> input, const std::vector<int>& chunks, int threads,
                                    int skipped_layer = -1) {
  ThreadPool pool(threads);
  return replay_stage(std::move(shard), tokens, input, chunks, pool, skipped_layer);
}

using px::prompt_then_decode;

}  // namespace px::test
