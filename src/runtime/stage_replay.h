#pragma once
// Runs one pipeline stage's layers over a token sequence outside any executor: the way a
// verifier replays what a worker computed (one prefill, `chunks = {n}`), or the way the worker
// computed it (a prompt, then one position at a time with the KV cache). Returns the stage's
// output hidden states [n, n_embd]. The head's result verifier (swarm/result_verifier.h) uses it
// to settle a dispute between two replicas; the commitment tests use it to calibrate.
#include <memory>
#include <span>
#include <vector>

#include "model/model_shard.h"

namespace px {

class ThreadPool;

// `chunks`: how many positions each forward call takes, summing to tokens.size(). `input`: the
// previous stage's output [n, n_embd] (ignored on the first stage). The shard must not be the
// last one (that one returns logits). `skipped_layer`: a layer left out (the skip-layer fault).
// Throws px::Error for chunks that do not cover the tokens or an input of the wrong size.
std::vector<float> replay_stage(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                std::span<const float> input, const std::vector<int>& chunks, ThreadPool& pool,
                                int skipped_layer = -1);

// The last stage's counterpart, as one prefill: the logits [rows.size(), n_vocab] its layers
// give at each of `rows` (positions of `tokens`, ascending; row p is what the token at p + 1 is
// sampled from), from `input` [n, n_embd] (ignored when the shard is also the first stage, i.e.
// the whole model). Empty `rows`: the final position only. Throws px::Error for a shard that is
// not the last, an input of the wrong size or a row outside the tokens.
std::vector<float> replay_logits(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                 std::span<const float> input, ThreadPool& pool, std::span<const int> rows = {});

// A prompt of `prompt` positions, then one decode step per remaining position.
std::vector<int> prompt_then_decode(int prompt, int n);

}  // namespace px
