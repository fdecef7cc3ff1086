#pragma once
// A simple contiguous KV cache: per sequence, per layer of the shard, keys and values for
// positions [0, length). Storage grows on demand up to n_ctx. The runtime replaces this with
// the paged cache; the forward pass only needs key()/value() pointers per position.
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "model/model_config.h"

namespace px {

class KvCache {
 public:
  KvCache(const ModelConfig& config, LayerRange range, int n_ctx);

  int n_ctx() const { return n_ctx_; }
  int kv_dim() const { return kv_dim_; }
  // Number of positions stored for seq (0 for an unknown sequence).
  int length(int seq) const;
  // Makes room for positions [0, n) of seq, dropping anything at or beyond `keep`.
  void prepare(int seq, int keep, int n);
  void remove(int seq);
  void clear() { seqs_.clear(); }

  // Keys / values of absolute layer `layer` for seq: [capacity, kv_dim], position-major,
  // valid for positions below length(seq) (and for those being written by prepare()).
  float* keys(int seq, int layer) { return slot(seq, layer, false); }
  float* values(int seq, int layer) { return slot(seq, layer, true); }

 private:
  struct Sequence {
    int length = 0;
    int capacity = 0;
    std::vector<std::vector<float>> k, v;  // per layer: [capacity, kv_dim]
  };
  float* slot(int seq, int layer, bool value);

  LayerRange range_;
  int kv_dim_;
  int n_ctx_;
  std::unordered_map<int, Sequence> seqs_;
};

}  // namespace px
