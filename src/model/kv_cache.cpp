#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace px {

KvCache::KvCache(const ModelConfig& config, LayerRange range, int n_ctx)
    : range_(range), kv_dim_(config.kv_dim()), n_ctx_(n_ctx) {
  if (n_ctx <= 0) fail("context size must be positive, got {}", n_ctx);
}

int KvCache::length(int seq) const {
  const auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.length;
}

void KvCache::prepare(int seq, int keep, int n) {
  if (n > n_ctx_) fail("sequence {} needs {} positions but the context holds {}", seq, n, n_ctx_);
  Sequence& s = seqs_[seq];
  if (s.k.empty()) {
    s.k.resize(range_.size());
    s.v.resize(range_.size());
  }
  if (n > s.capacity) {
    // Grow geometrically so a long decode does not reallocate every step.
    const int capacity = std::min(n_ctx_, std::max({n, s.capacity * 2, 64}));
    for (auto* layers : {&s.k, &s.v}) {
      for (auto& buf : *layers) buf.resize(size_t(capacity) * kv_dim_);
    }
    s.capacity = capacity;
  }
  s.length = std::max(std::min(s.length, keep), n);
}

void KvCache::remove(int seq) { seqs_.erase(seq); }

float* KvCache::slot(int seq, int layer, bool value) {
  const auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("KV cache has no sequence {}", seq);
  auto& layers = value ? it->second.v : it->second.k;
  return layers.at(layer - range_.begin).data();
}

}  // namespace px
