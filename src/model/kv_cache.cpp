#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace px {
namespace {

BlockManagerConfig block_config(const KvCacheConfig& c) {
  if (c.n_ctx <= 0) fail("context size must be positive, got {}", c.n_ctx);
  if (c.block_size <= 0) fail("KV block size must be positive, got {}", c.block_size);
  BlockManagerConfig b;
  b.block_size = c.block_size;
  b.n_blocks = c.n_blocks > 0 ? c.n_blocks : (c.n_ctx + c.block_size - 1) / c.block_size;
  b.prefix_caching = c.prefix_caching;
  return b;
}

}  // namespace

KvCache::KvCache(const ModelConfig& config, LayerRange range, const KvCacheConfig& cache_config)
    : range_(range), kv_dim_(config.kv_dim()), n_ctx_(cache_config.n_ctx), blocks_(block_config(cache_config)) {
  const size_t per_layer = size_t(blocks_.n_blocks()) * blocks_.block_size() * kv_dim_;
  for (int l = 0; l < range.size(); ++l) {
    keys_.emplace_back(new float[per_layer]);
    values_.emplace_back(new float[per_layer]);
  }
}

KvCache::KvCache(const ModelConfig& config, LayerRange range, int n_ctx)
    : KvCache(config, range, KvCacheConfig{.n_ctx = n_ctx}) {}

size_t KvCache::bytes() const {
  return 2 * size_t(range_.size()) * blocks_.n_blocks() * blocks_.block_size() * kv_dim_ * sizeof(float);
}

int KvCache::length(int seq) const {
  return blocks_.has_sequence(seq) ? blocks_.num_computed(seq) : 0;
}

void KvCache::prepare(int seq, int first, std::span<const int32_t> tokens) {
  const int end = first + int(tokens.size());
  if (end > n_ctx_) fail("sequence {} needs {} positions but the context holds {}", seq, end, n_ctx_);
  if (!blocks_.has_sequence(seq)) {
    if (first != 0) fail("sequence {} is not in the KV cache, so it must start at position 0, not {}", seq, first);
    if (!blocks_.can_allocate(tokens)) fail("the KV cache is full ({} blocks)", blocks_.n_blocks());
    blocks_.allocate(seq, tokens);
    return;
  }
  // Positions the sequence already holds must be the same tokens (e.g. a prompt allocated at
  // admission and computed chunk by chunk); the rest are appended.
  const std::vector<int32_t>& held = blocks_.tokens(seq);
  const int n_held = int(held.size());
  for (int p = first; p < std::min(end, n_held); ++p) {
    if (held[p] != tokens[p - first]) {
      fail("sequence {}: position {} holds token {} but the batch has {} (remove the sequence to rewrite it)",
           seq, p, held[p], tokens[p - first]);
    }
  }
  if (end > n_held && !blocks_.append(seq, tokens.subspan(n_held - first))) {
    fail("the KV cache is full ({} blocks)", blocks_.n_blocks());
  }
}

void KvCache::commit(int seq, int n) { blocks_.mark_computed(seq, n); }

void KvCache::remove(int seq) {
  if (blocks_.has_sequence(seq)) blocks_.free(seq);
}

float* KvCache::block_data(std::vector<Pool>& pool, int layer, int32_t block) {
  return pool[layer - range_.begin].get() + size_t(block) * blocks_.block_size() * kv_dim_;
}

}  // namespace px
