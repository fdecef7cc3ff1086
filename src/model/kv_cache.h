#pragma once
// The paged KV cache: keys and values live in fixed-size blocks of `block_size` positions, per
// layer of the shard. A value block is [block_size, kv_dim] (a position's row contiguous); a key
// block is [kv_dim, block_size] (dimension-major, so attention scores a vector of consecutive
// positions per multiply-add, see attend_kv_head). Which blocks hold which sequence is
// decided by the BlockManager (block tables, ref-counted blocks shared between sequences with
// the same prefix, LRU reuse of cached blocks); this class owns the storage and gives the
// forward pass the block table of each sequence.
//
// Position p of sequence s lives in block block_table(s)[p / block_size], slot p % block_size.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/model_config.h"
#include "model/block_manager.h"

namespace px {

struct KvCacheConfig {
  int n_ctx = 4096;           // positions per sequence at most
  int n_blocks = 0;           // pool size; 0: enough for one sequence of n_ctx positions
  int block_size = 16;
  bool prefix_caching = false;
};

class KvCache {
 public:
  KvCache(const ModelConfig& config, LayerRange range, const KvCacheConfig& cache_config);
  // One sequence of up to n_ctx positions, no prefix caching (the CLI, tests, benchmarks).
  KvCache(const ModelConfig& config, LayerRange range, int n_ctx);

  int n_ctx() const { return n_ctx_; }
  int kv_dim() const { return kv_dim_; }
  int block_size() const { return blocks_.block_size(); }
  size_t bytes() const;

  // Positions of seq whose keys and values have been computed (0 for an unknown sequence).
  int length(int seq) const;
  // Makes room for tokens at positions [first, first + tokens.size()) of seq: a new sequence
  // is allocated (first must be 0), an existing one grows. Positions it already holds must
  // carry the same tokens. Throws px::Error when the pool has no free block left.
  void prepare(int seq, int first, std::span<const int32_t> tokens);
  // The keys and values of positions [0, n) of seq are now written (their blocks become
  // shareable by later sequences with the same prefix).
  void commit(int seq, int n);
  void remove(int seq);

  const std::vector<int32_t>& block_table(int seq) const { return blocks_.block_table(seq); }
  // Keys [kv_dim, block_size] / values [block_size, kv_dim] of a block in absolute layer `layer`.
  float* key_block(int layer, int32_t block) { return block_data(keys_, layer, block); }
  float* value_block(int layer, int32_t block) { return block_data(values_, layer, block); }

  // The allocation policy, for the runtime's admission control and prefix caching.
  BlockManager& blocks() { return blocks_; }
  const BlockManager& blocks() const { return blocks_; }

 private:
  using Pool = std::unique_ptr<float[]>;  // uninitialised: pages are touched only when used
  float* block_data(std::vector<Pool>& pool, int layer, int32_t block);

  LayerRange range_;
  int kv_dim_;
  int n_ctx_;
  BlockManager blocks_;
  std::vector<Pool> keys_, values_;  // per layer: [n_blocks, block_size, kv_dim]
};

}  // namespace px
