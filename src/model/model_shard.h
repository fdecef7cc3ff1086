#pragma once
// A ModelShard holds the weights of layers [begin, end) of a model, plus the token embedding
// when it is the first shard and the output head when it is the last. Matrices stay in the
// memory-mapped file; only the tensors of the shard are ever touched. Where the CPU has a
// faster kernel for another layout (Q8_0 / Q4_0 / F16 / BF16 with AVX-512 VNNI), the shard's matrices are
// also repacked once into that layout (kernels/cpu/interleaved.h).
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "model/model_config.h"
#include "model/weight_source.h"

namespace px {

class GgufFile;

struct LayerWeights {
  std::vector<float> attn_norm;          // [n_embd]
  WeightView wq, wk, wv, wo;             // [q_dim, n_embd], [kv_dim, n_embd] x2, [n_embd, q_dim]
  std::vector<float> bq, bk, bv;         // qwen2 biases, else empty
  std::vector<float> q_norm, k_norm;     // qwen3 per-head norms [head_dim], else empty
  std::vector<float> ffn_norm;           // [n_embd]
  WeightView gate, up, down;             // [n_ff, n_embd] x2, [n_embd, n_ff]
};

class ModelShard {
 public:
  // Loads the shard of `weights` covering `range` (must lie within [0, n_layers)).
  ModelShard(std::shared_ptr<const WeightSource> weights, LayerRange range);
  ModelShard(std::shared_ptr<const GgufFile> file, LayerRange range);
  // Convenience: opens a GGUF file or a Hugging Face directory and loads all layers (a
  // one-stage pipeline), or the given range.
  static std::shared_ptr<ModelShard> load(const std::string& path);
  static std::shared_ptr<ModelShard> load(const std::string& path, LayerRange range);

  const ModelConfig& config() const { return config_; }
  LayerRange range() const { return range_; }
  bool is_first() const { return range_.begin == 0; }
  bool is_last() const { return range_.end == config_.n_layers; }
  const WeightSource& weights() const { return *weights_; }

  // Layer `layer` is an absolute index in [range.begin, range.end).
  const LayerWeights& layer(int layer) const { return layers_.at(layer - range_.begin); }
  const WeightView& token_embedding() const { return token_embd_; }  // first shard only
  const WeightView& output() const { return output_; }                // last shard only
  const std::vector<float>& output_norm() const { return output_norm_; }
  // Angular frequency of each rotary pair, with rope scaling folded in: [head_dim / 2].
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }
  // Bytes of weights one token reads (the matrices of the shard, or one embedding row).
  size_t weight_bytes_per_token() const;

 private:
  WeightView matrix(const std::string& name, int64_t rows, int64_t cols) const;
  std::vector<float> vector(const std::string& name, int64_t n, bool required = true) const;
  // Adds the interleaved copy of w where that pays off on this CPU.
  void interleave(WeightView& w);

  std::shared_ptr<const WeightSource> weights_;
  ModelConfig config_;
  LayerRange range_;
  std::vector<LayerWeights> layers_;
  WeightView token_embd_;
  WeightView output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_;
  struct FreeBytes {
    void operator()(void* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, FreeBytes>> interleaved_;  // owned by the views above
};

}  // namespace px
