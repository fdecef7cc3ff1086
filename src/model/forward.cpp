#include "model/forward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant.h"

namespace px {

void ForwardBatch::clear() {
  tokens.clear();
  hidden.clear();
  positions.clear();
  seq_ids.clear();
  want_logits.clear();
}

void ForwardBatch::add_tokens(int seq, std::span<const int32_t> ids, int first_pos, bool all_logits) {
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  const int count = static_cast<int>(ids.size());
  for (int i = 0; i < count; ++i) {
    positions.push_back(first_pos + i);
    seq_ids.push_back(seq);
    want_logits.push_back(all_logits || i == count - 1);
  }
}

ForwardPass::ForwardPass(std::shared_ptr<const ModelShard> shard, KvCache& cache, ThreadPool& pool)
    : shard_(std::move(shard)), cache_(cache), pool_(pool) {}

void ForwardPass::check_and_prepare(const ForwardBatch& batch) {
  const ModelConfig& c = shard_->config();
  const int n = batch.size();
  if (n == 0) fail("empty batch");
  if (int(batch.seq_ids.size()) != n) fail("batch has {} positions but {} sequence ids", n, batch.seq_ids.size());
  // Every shard gets the token ids: the first embeds them, all key their KV blocks by them.
  if (int(batch.tokens.size()) != n) fail("batch has {} positions but {} tokens", n, batch.tokens.size());
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= c.n_vocab) fail("token id {} is outside the vocabulary (0..{})", t, c.n_vocab - 1);
  }
  if (!shard_->is_first() && batch.hidden.size() != size_t(n) * c.n_embd) {
    fail("batch of {} rows needs {} hidden values, got {}", n, size_t(n) * c.n_embd, batch.hidden.size());
  }
  if (shard_->is_last() && int(batch.want_logits.size()) != n) {
    fail("batch has {} positions but {} logit flags", n, batch.want_logits.size());
  }
  // Each sequence's rows must be consecutive positions starting where its cache can continue.
  spans_.clear();
  for (int i = 0; i < n; ++i) {
    const int seq = batch.seq_ids[i], pos = batch.positions[i];
    auto it = std::find_if(spans_.begin(), spans_.end(), [&](const SeqSpan& s) { return s.seq == seq; });
    if (it == spans_.end()) {
      spans_.push_back({seq, i, pos, pos});
    } else if (pos != it->last + 1 || i != it->row + (pos - it->first)) {
      fail("sequence {}: position {} does not follow position {} in the batch", seq, pos, it->last);
    } else {
      it->last = pos;
    }
  }
  for (const SeqSpan& span : spans_) {
    const int length = cache_.length(span.seq);
    if (span.first < 0 || span.first > length) {
      fail("sequence {}: batch starts at position {} but the cache holds {} positions", span.seq, span.first, length);
    }
    if (span.last >= cache_.n_ctx()) {
      fail("sequence {}: position {} exceeds the context size {}", span.seq, span.last, cache_.n_ctx());
    }
  }
  for (const SeqSpan& span : spans_) {
    cache_.prepare(span.seq, span.first,
                   std::span(batch.tokens).subspan(span.row, span.last - span.first + 1));
  }
}

void ForwardPass::embed(const ForwardBatch& batch) {
  const int n = batch.size(), d = shard_->config().n_embd;
  if (!shard_->is_first()) {
    std::copy(batch.hidden.begin(), batch.hidden.end(), x_.begin());
    return;
  }
  const WeightView& e = shard_->token_embedding();
  const size_t stride = row_bytes(e.type, e.cols);
  for (int i = 0; i < n; ++i) {
    const auto* row = static_cast<const uint8_t*>(e.data) + stride * size_t(batch.tokens[i]);
    dequantize_row(e.type, row, x_.data() + size_t(i) * d, d);
  }
}

void ForwardPass::run(const ForwardBatch& batch, ForwardResult& out) {
  check_and_prepare(batch);
  const ModelConfig& c = shard_->config();
  const int n = batch.size();
  x_.resize(size_t(n) * c.n_embd);
  xn_.resize(size_t(n) * c.n_embd);
  q_.resize(size_t(n) * c.q_dim());
  attn_.resize(size_t(n) * c.q_dim());
  k_.resize(size_t(n) * c.kv_dim());
  v_.resize(size_t(n) * c.kv_dim());
  proj_.resize(size_t(n) * c.n_embd);
  gate_.resize(size_t(n) * c.n_ff);
  up_.resize(size_t(n) * c.n_ff);
  const size_t half = size_t(c.head_dim) / 2;
  rope_cos_.resize(size_t(n) * half);
  rope_sin_.resize(size_t(n) * half);
  for (int i = 0; i < n; ++i) {
    rope_cos_sin(float(batch.positions[i]), shard_->rope_freqs().data(), int64_t(half), rope_cos_.data() + i * half,
                 rope_sin_.data() + i * half);
  }

  embed(batch);
  for (int layer = shard_->range().begin; layer < shard_->range().end; ++layer) {
    if (layer == skipped_layer_) continue;
    attention_block(layer, batch);
    ffn_block(layer, n);
  }
  for (const SeqSpan& span : spans_) cache_.commit(span.seq, span.last + 1);
  if (shard_->is_last()) {
    head(batch, out);
  } else {
    out.is_logits = false;
    out.rows = n;
    out.width = c.n_embd;
    out.values.assign(x_.begin(), x_.end());
    out.batch_rows.resize(n);
    for (int i = 0; i < n; ++i) out.batch_rows[i] = i;
  }
}

namespace {

void add_bias(float* rows, const std::vector<float>& bias, int n, int width) {
  if (bias.empty()) return;
  for (int i = 0; i < n; ++i) add_in_place(rows + size_t(i) * width, bias.data(), width);
}

// Per-head RMSNorm (qwen3's q_norm / k_norm) then RoPE, in place on [n, heads * head_dim], with
// each row's cos / sin ([n, head_dim / 2]).
void norm_and_rotate(float* rows, int n, int heads, int head_dim, const std::vector<float>& norm,
                     float eps, const float* cos, const float* sin, RopeStyle style) {
  const size_t half = size_t(head_dim) / 2;
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < heads; ++h) {
      float* head = rows + (size_t(i) * heads + h) * head_dim;
      if (!norm.empty()) rms_norm(head, norm.data(), head, head_dim, eps);
      rope_apply(head, head_dim, cos + i * half, sin + i * half, style);
    }
  }
}

}  // namespace

void ForwardPass::multiply_shared_input(std::initializer_list<std::pair<const WeightView*, float*>> products,
                                        const float* x, int n) {
  // Matrices of one block-quantized format round the shared input to int8 once (at most 3).
  const WeightView& first = *products.begin()->first;
  const bool share = dtype_info(first.type).block_size > 1 &&
                     std::all_of(products.begin(), products.end(), [&](const auto& p) {
                       return dtype_info(p.first->type).block_size > 1 &&
                              activation_format(p.first->type) == activation_format(first.type);
                     });
  if (!share) {
    for (const auto& [weights, out] : products) matmul(*weights, x, n, out, pool_);
    return;
  }
  acts_.quantize(activation_format(first.type), x, n, first.cols, &pool_);
  const WeightView* weights[3];
  float* outputs[3];
  size_t count = 0;
  for (const auto& [w, out] : products) {
    weights[count] = w;
    outputs[count++] = out;
  }
  // One parallel section for all of them: decode pays a barrier per section.
  matmul_shared_input(std::span(weights, count), std::span(outputs, count), acts_, pool_);
}

void ForwardPass::attention_block(int layer, const ForwardBatch& batch) {
  const ModelConfig& c = shard_->config();
  const LayerWeights& w = shard_->layer(layer);
  const int n = batch.size();
  for (int i = 0; i < n; ++i) {
    rms_norm(x_.data() + size_t(i) * c.n_embd, w.attn_norm.data(), xn_.data() + size_t(i) * c.n_embd,
             c.n_embd, c.rms_eps);
  }
  multiply_shared_input({{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}}, xn_.data(), n);
  add_bias(q_.data(), w.bq, n, c.q_dim());
  add_bias(k_.data(), w.bk, n, c.kv_dim());
  add_bias(v_.data(), w.bv, n, c.kv_dim());
  norm_and_rotate(q_.data(), n, c.n_heads, c.head_dim, w.q_norm, c.rms_eps, rope_cos_.data(), rope_sin_.data(),
                  c.rope_style);
  norm_and_rotate(k_.data(), n, c.n_kv_heads, c.head_dim, w.k_norm, c.rms_eps, rope_cos_.data(), rope_sin_.data(),
                  c.rope_style);
  // Store this batch's keys and values in their blocks, then attend over each sequence's cache.
  const int bs = cache_.block_size();
  for (int i = 0; i < n; ++i) {
    const int pos = batch.positions[i];
    const int32_t block = cache_.block_table(batch.seq_ids[i])[pos / bs];
    const int slot = pos % bs;
    // Keys dimension-major ([kv_dim][block_size], see KvCache), values position-major.
    const float* key = k_.data() + size_t(i) * c.kv_dim();
    float* key_block = cache_.key_block(layer, block);
    for (int d = 0; d < c.kv_dim(); ++d) key_block[size_t(d) * bs + slot] = key[d];
    std::copy_n(v_.data() + size_t(i) * c.kv_dim(), c.kv_dim(), cache_.value_block(layer, block) + size_t(slot) * c.kv_dim());
  }
  attend(layer, batch);
  matmul(w.wo, attn_.data(), n, proj_.data(), pool_);
  for (int i = 0; i < n; ++i) {
    add_in_place(x_.data() + size_t(i) * c.n_embd, proj_.data() + size_t(i) * c.n_embd, c.n_embd);
  }
}

void ForwardPass::attend(int layer, const ForwardBatch& batch) {
  const ModelConfig& c = shard_->config();
  const int n = batch.size();
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  const int bs = cache_.block_size();
  // One job per (token, KV head): the query heads of a group read its keys and values once.
  pool_.parallel_for(int64_t(n) * c.n_kv_heads, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    thread_local std::vector<const float*> key_blocks, value_blocks;
    for (int64_t job = begin; job < end; ++job) {
      const int i = int(job / c.n_kv_heads), kv_head = int(job % c.n_kv_heads);
      const int n_pos = batch.positions[i] + 1;
      const std::vector<int32_t>& table = cache_.block_table(batch.seq_ids[i]);
      const size_t kv_offset = size_t(kv_head) * c.head_dim;  // in a value row; keys: times bs
      const int n_blocks = (n_pos + bs - 1) / bs;
      key_blocks.resize(n_blocks);
      value_blocks.resize(n_blocks);
      for (int b = 0; b < n_blocks; ++b) {
        key_blocks[b] = cache_.key_block(layer, table[b]) + kv_offset * bs;
        value_blocks[b] = cache_.value_block(layer, table[b]) + kv_offset;
      }
      scores.resize(size_t(group) * n_pos);
      const size_t first_head = size_t(i) * c.n_heads + size_t(kv_head) * group;
      attend_kv_head(q_.data() + first_head * c.head_dim, group, c.head_dim, scale,
                     KeyBlocks{key_blocks.data(), bs}, KvRows{value_blocks.data(), bs, c.kv_dim()},
                     n_pos, scores.data(), attn_.data() + first_head * c.head_dim);
    }
  });
}

void ForwardPass::ffn_block(int layer, int n) {
  const ModelConfig& c = shard_->config();
  const LayerWeights& w = shard_->layer(layer);
  for (int i = 0; i < n; ++i) {
    rms_norm(x_.data() + size_t(i) * c.n_embd, w.ffn_norm.data(), xn_.data() + size_t(i) * c.n_embd,
             c.n_embd, c.rms_eps);
  }
  multiply_shared_input({{&w.gate, gate_.data()}, {&w.up, up_.data()}}, xn_.data(), n);
  silu_mul(gate_.data(), up_.data(), gate_.data(), int64_t(n) * c.n_ff);
  matmul(w.down, gate_.data(), n, proj_.data(), pool_);
  for (int i = 0; i < n; ++i) {
    add_in_place(x_.data() + size_t(i) * c.n_embd, proj_.data() + size_t(i) * c.n_embd, c.n_embd);
  }
}

void ForwardPass::head(const ForwardBatch& batch, ForwardResult& out) {
  const ModelConfig& c = shard_->config();
  out.is_logits = true;
  out.width = c.n_vocab;
  out.batch_rows.clear();
  for (int i = 0; i < batch.size(); ++i) {
    if (batch.want_logits[i]) out.batch_rows.push_back(i);
  }
  out.rows = static_cast<int>(out.batch_rows.size());
  // Normalise only the rows that want logits, packed together for one matmul.
  for (int r = 0; r < out.rows; ++r) {
    rms_norm(x_.data() + size_t(out.batch_rows[r]) * c.n_embd, shard_->output_norm().data(),
             xn_.data() + size_t(r) * c.n_embd, c.n_embd, c.rms_eps);
  }
  out.values.resize(size_t(out.rows) * c.n_vocab);
  if (out.rows > 0) matmul(shard_->output(), xn_.data(), out.rows, out.values.data(), pool_);
}

}  // namespace px
