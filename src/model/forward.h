#pragma once
// The forward pass of a ModelShard over a batch of tokens from several sequences.
//
// A batch is flat: row i is one token of sequence seq_ids[i] at position positions[i]. Within
// a batch each sequence's rows are adjacent, with consecutive positions starting at or below
// what its KV cache holds (positions it holds must carry the same tokens). Every shard gets
// the token ids (they key the paged KV blocks for prefix sharing); the first shard embeds
// them, the others take the previous shard's hidden states. The last shard returns logits for the rows
// flagged in `want_logits`; the others return hidden states for every row. Running a model as
// two shards back to back gives bit-identical results to running it whole.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/model_shard.h"

namespace px {

class ThreadPool;

struct ForwardBatch {
  std::vector<int32_t> tokens;        // [n]
  std::vector<float> hidden;          // [n, n_embd] (other shards)
  std::vector<int32_t> positions;     // [n]
  std::vector<int32_t> seq_ids;       // [n]
  std::vector<uint8_t> want_logits;   // [n] (last shard)

  int size() const { return static_cast<int>(positions.size()); }
  void clear();
  // Appends tokens of seq at positions first_pos, first_pos + 1, ...; logits are requested
  // for every row (all_logits) or only the span's last one.
  void add_tokens(int seq, std::span<const int32_t> ids, int first_pos, bool all_logits = false);
};

struct ForwardResult {
  std::vector<float> values;    // [rows, width]
  int rows = 0;
  int width = 0;                // n_embd (hidden) or n_vocab (logits)
  bool is_logits = false;
  std::vector<int32_t> batch_rows;  // the batch row each output row belongs to
  std::span<const float> row(int i) const {
    return {values.data() + size_t(i) * width, size_t(width)};
  }
};

class ForwardPass {
 public:
  ForwardPass(std::shared_ptr<const ModelShard> shard, KvCache& cache, ThreadPool& pool);

  // Runs the batch through the shard's layers; throws px::Error on invalid input (unknown
  // token ids, bad positions, wrong hidden size) before touching the KV cache.
  void run(const ForwardBatch& batch, ForwardResult& out);

  const ModelShard& shard() const { return *shard_; }

  // A test aid that plays a dishonest worker (runtime/stage_fault.h): layer `layer` of the
  // shard's range is not computed (its input passes through unchanged). -1: none.
  void set_skipped_layer(int layer) { skipped_layer_ = layer; }

 private:
  void check_and_prepare(const ForwardBatch& batch);
  void embed(const ForwardBatch& batch);
  void attention_block(int layer, const ForwardBatch& batch);
  void ffn_block(int layer, int n);
  void multiply_shared_input(std::initializer_list<std::pair<const WeightView*, float*>> products,
                             const float* x, int n);
  void attend(int layer, const ForwardBatch& batch);
  void head(const ForwardBatch& batch, ForwardResult& out);

  struct SeqSpan {
    int seq, row, first, last;  // rows [row, row + last - first] hold positions first..last
  };

  std::shared_ptr<const ModelShard> shard_;
  KvCache& cache_;
  std::vector<SeqSpan> spans_;
  ThreadPool& pool_;
  // Scratch, reused across calls: residual stream and per-block activations.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, proj_, gate_, up_;
  // RoPE cos / sin of each row's position, [n, head_dim / 2]: the same for every layer and head,
  // so computed once per call (in double, the costly part) instead of per layer and head.
  std::vector<float> rope_cos_, rope_sin_;
  QuantizedActivations acts_;
  int skipped_layer_ = -1;
};

}  // namespace px
