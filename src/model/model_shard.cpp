#include "model/model_shard.h"

#include <cmath>

#include "core/error.h"
#include "core/mapped_file.h"
#include "kernels/cpu/interleaved.h"
#include "kernels/cpu/quant.h"
#include "model/gguf.h"

namespace px {

ModelShard::ModelShard(std::shared_ptr<const GgufFile> file, LayerRange range)
    : ModelShard(gguf_weights(std::move(file)), range) {}

ModelShard::ModelShard(std::shared_ptr<const WeightSource> weights, LayerRange range)
    : weights_(std::move(weights)), config_(weights_->config()), range_(range) {
  const ModelConfig& c = config_;
  if (range.begin < 0 || range.end > c.n_layers || range.begin >= range.end) {
    fail("{}: layer range {}:{} is outside the model's {} layers", weights_->name(), range.begin,
         range.end, c.n_layers);
  }
  // The vocabulary size comes from the embedding (present in every file, tied or not).
  const std::optional<TensorRef> embd = weights_->find("token_embd.weight");
  if (!embd) fail("{}: missing tensor 'token_embd.weight'", weights_->name());
  if (embd->dims.size() != 2 || embd->dims[0] != c.n_embd) {
    fail("{}: token_embd.weight must be [{} x n_vocab]", weights_->name(), c.n_embd);
  }
  config_.n_vocab = static_cast<int>(embd->dims[1]);

  if (is_first()) token_embd_ = matrix("token_embd.weight", c.n_vocab, c.n_embd);
  if (is_last()) {
    output_norm_ = vector("output_norm.weight", c.n_embd);
    output_ = weights_->find("output.weight") ? matrix("output.weight", c.n_vocab, c.n_embd)
                                                   : matrix("token_embd.weight", c.n_vocab, c.n_embd);
  }

  // Rotary frequencies: base^(-2i/d), divided by the llama3 per-frequency factors when the
  // file has them and by any linear scaling factor.
  const int half = c.head_dim / 2;
  std::vector<float> factors = vector("rope_freqs.weight", half, /*required=*/false);
  rope_freqs_.resize(half);
  for (int i = 0; i < half; ++i) {
    double f = std::pow(double(c.rope_base), -2.0 * i / c.head_dim) / c.rope_linear_scale;
    if (!factors.empty()) f /= factors[i];
    rope_freqs_[i] = static_cast<float>(f);
  }

  layers_.resize(range.size());
  for (int l = range.begin; l < range.end; ++l) {
    LayerWeights& w = layers_[l - range.begin];
    const std::string p = "blk." + std::to_string(l) + ".";
    w.attn_norm = vector(p + "attn_norm.weight", c.n_embd);
    w.wq = matrix(p + "attn_q.weight", c.q_dim(), c.n_embd);
    w.wk = matrix(p + "attn_k.weight", c.kv_dim(), c.n_embd);
    w.wv = matrix(p + "attn_v.weight", c.kv_dim(), c.n_embd);
    w.wo = matrix(p + "attn_output.weight", c.n_embd, c.q_dim());
    if (c.has_qkv_bias) {
      w.bq = vector(p + "attn_q.bias", c.q_dim());
      w.bk = vector(p + "attn_k.bias", c.kv_dim());
      w.bv = vector(p + "attn_v.bias", c.kv_dim());
    }
    if (c.has_qk_norm) {
      w.q_norm = vector(p + "attn_q_norm.weight", c.head_dim);
      w.k_norm = vector(p + "attn_k_norm.weight", c.head_dim);
    }
    w.ffn_norm = vector(p + "ffn_norm.weight", c.n_embd);
    w.gate = matrix(p + "ffn_gate.weight", c.n_ff, c.n_embd);
    w.up = matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
    w.down = matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
    for (WeightView* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.gate, &w.up, &w.down}) interleave(*m);
  }
  if (is_last()) interleave(output_);
}

void ModelShard::interleave(WeightView& w) {
  if (!w.data || !kernels::interleave_pays_off(w.type)) return;
  const size_t bytes = (kernels::interleaved_bytes(w.type, w.rows, w.cols) + 63) / 64 * 64;
  std::unique_ptr<uint8_t, FreeBytes> copy(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
  if (!copy) fail("{}: out of memory repacking a {} x {} matrix", weights_->name(), w.rows, w.cols);
  kernels::interleave_rows(w.type, w.data, w.rows, w.cols, copy.get());
  // The kernels now read the copy: let the file's pages go, so memory is not held twice.
  advise_pages_unused(w.data, row_bytes(w.type, w.cols) * size_t(w.rows));
  w.interleaved = copy.get();
  interleaved_.push_back(std::move(copy));
}

std::shared_ptr<ModelShard> ModelShard::load(const std::string& path) {
  auto weights = open_weights(path);
  const int n_layers = weights->config().n_layers;
  return std::make_shared<ModelShard>(std::move(weights), LayerRange{0, n_layers});
}

std::shared_ptr<ModelShard> ModelShard::load(const std::string& path, LayerRange range) {
  return std::make_shared<ModelShard>(open_weights(path), range);
}

WeightView ModelShard::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const std::optional<TensorRef> t = weights_->find(name);
  if (!t) fail("{}: missing tensor '{}'", weights_->name(), name);
  if (t->dims.size() != 2 || t->dims[0] != cols || t->dims[1] != rows) {
    std::string dims;
    for (int64_t d : t->dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
    fail("{}: tensor '{}' has dims [{}], expected [{} x {}]", weights_->name(), name, dims, cols, rows);
  }
  if (!dtype_info(t->type).computable) {
    fail("{}: tensor '{}' has type {}, which is not supported yet", weights_->name(), name,
         dtype_name(t->type));
  }
  return WeightView{t->data, t->type, rows, cols};
}

std::vector<float> ModelShard::vector(const std::string& name, int64_t n, bool required) const {
  const std::optional<TensorRef> t = weights_->find(name);
  if (!t) {
    if (required) fail("{}: missing tensor '{}'", weights_->name(), name);
    return {};
  }
  if (t->elements() != n || t->dims.size() != 1) {
    fail("{}: tensor '{}' has {} elements, expected a vector of {}", weights_->name(), name,
         t->elements(), n);
  }
  if (!dtype_info(t->type).computable) {
    fail("{}: tensor '{}' has unsupported type {}", weights_->name(), name, dtype_name(t->type));
  }
  std::vector<float> out(n);
  dequantize_row(t->type, t->data, out.data(), n);
  return out;
}

size_t ModelShard::weight_bytes_per_token() const {
  auto bytes = [](const WeightView& w) { return w.data ? row_bytes(w.type, w.cols) * w.rows : 0; };
  size_t total = 0;
  for (const LayerWeights& w : layers_) {
    total += bytes(w.wq) + bytes(w.wk) + bytes(w.wv) + bytes(w.wo) + bytes(w.gate) + bytes(w.up) +
             bytes(w.down);
  }
  if (is_last()) total += bytes(output_);
  if (is_first()) total += row_bytes(token_embd_.type, token_embd_.cols);
  return total;
}

}  // namespace px
