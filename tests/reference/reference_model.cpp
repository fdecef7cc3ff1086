#include "reference/reference_model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/quant.h"
#include "model/gguf.h"

namespace px::testing {
namespace {

std::vector<double> load(const GgufFile& f, const std::string& name, int64_t expected_elements) {
  const GgufTensorInfo* t = f.find_tensor(name);
  if (!t) fail("reference: missing {}", name);
  if (t->n_elements != expected_elements) fail("reference: {} has {} elements", name, t->n_elements);
  std::vector<float> tmp(t->n_elements);
  dequantize_row(t->type, f.tensor_data(*t), tmp.data(), t->n_elements);
  return {tmp.begin(), tmp.end()};
}

}  // namespace

ReferenceModel::Matrix ReferenceModel::load_matrix(const GgufFile& f, const std::string& name,
                                                   int64_t elements) const {
  Matrix m{load(f, name, elements), 0};
  const DType type = f.find_tensor(name)->type;
  if (rounding_ == ActivationRounding::Int8Blocks) {
    if (type == DType::Q8_0 || type == DType::Q4_0) m.activation_block = 32;
    if (type == DType::Q4_K || type == DType::Q6_K) m.activation_block = 256;
  }
  return m;
}

ReferenceModel::ReferenceModel(const std::string& path, ActivationRounding rounding)
    : rounding_(rounding) {
  auto f = GgufFile::open(path);
  arch_ = f->get_string("general.architecture");
  const std::string a = arch_ + ".";
  n_layers_ = int(f->get_int(a + "block_count"));
  n_embd_ = int(f->get_int(a + "embedding_length"));
  n_heads_ = int(f->get_int(a + "attention.head_count"));
  n_kv_heads_ = int(f->get_int(a + "attention.head_count_kv"));
  n_ff_ = int(f->get_int(a + "feed_forward_length"));
  head_dim_ = f->find_int(a + "attention.key_length").value_or(n_embd_ / n_heads_);
  eps_ = f->get_float(a + "attention.layer_norm_rms_epsilon");
  rope_base_ = f->find_float(a + "rope.freq_base").value_or(10000.0);
  neox_ = arch_ != "llama";
  n_vocab_ = int(f->find_tensor("token_embd.weight")->dims[1]);
  if (f->find_tensor("rope_freqs.weight")) rope_factors_ = load(*f, "rope_freqs.weight", head_dim_ / 2);

  const int q_dim = n_heads_ * head_dim_, kv_dim = n_kv_heads_ * head_dim_;
  embedding_ = load_matrix(*f, "token_embd.weight", int64_t(n_vocab_) * n_embd_);
  output_norm_ = load(*f, "output_norm.weight", n_embd_);
  output_ = f->find_tensor("output.weight")
                ? load_matrix(*f, "output.weight", int64_t(n_vocab_) * n_embd_)
                : embedding_;
  layers_.resize(n_layers_);
  for (int l = 0; l < n_layers_; ++l) {
    Layer& L = layers_[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = load(*f, p + "attn_norm.weight", n_embd_);
    L.ffn_norm = load(*f, p + "ffn_norm.weight", n_embd_);
    L.wq = load_matrix(*f, p + "attn_q.weight", int64_t(q_dim) * n_embd_);
    L.wk = load_matrix(*f, p + "attn_k.weight", int64_t(kv_dim) * n_embd_);
    L.wv = load_matrix(*f, p + "attn_v.weight", int64_t(kv_dim) * n_embd_);
    L.wo = load_matrix(*f, p + "attn_output.weight", int64_t(n_embd_) * q_dim);
    L.gate = load_matrix(*f, p + "ffn_gate.weight", int64_t(n_ff_) * n_embd_);
    L.up = load_matrix(*f, p + "ffn_up.weight", int64_t(n_ff_) * n_embd_);
    L.down = load_matrix(*f, p + "ffn_down.weight", int64_t(n_embd_) * n_ff_);
    if (arch_ == "qwen2") {
      L.bq = load(*f, p + "attn_q.bias", q_dim);
      L.bk = load(*f, p + "attn_k.bias", kv_dim);
      L.bv = load(*f, p + "attn_v.bias", kv_dim);
    }
    if (arch_ == "qwen3") {
      L.q_norm = load(*f, p + "attn_q_norm.weight", head_dim_);
      L.k_norm = load(*f, p + "attn_k_norm.weight", head_dim_);
    }
  }
}

void ReferenceModel::reset() {
  pos_ = 0;
  for (Layer& L : layers_) {
    L.keys.clear();
    L.values.clear();
  }
}

std::vector<double> ReferenceModel::matvec(const Matrix& m, std::vector<double> x, int rows) const {
  const size_t cols = x.size();
  if (const size_t block = m.activation_block) {
    for (size_t b = 0; b < cols; b += block) {
      double amax = 0;
      for (size_t i = b; i < b + block; ++i) amax = std::max(amax, std::abs(x[i]));
      const double scale = amax / 127;
      for (size_t i = b; i < b + block; ++i) x[i] = scale > 0 ? std::nearbyint(x[i] / scale) * scale : 0;
    }
  }
  std::vector<double> y(rows, 0.0);
  for (int r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) y[r] += m.w[r * cols + c] * x[c];
  }
  return y;
}

std::vector<double> ReferenceModel::rms_norm(const std::vector<double>& x, const std::vector<double>& w) const {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps_);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

void ReferenceModel::rotate(double* head, int pos) const {
  const int half = head_dim_ / 2;
  for (int i = 0; i < half; ++i) {
    double freq = std::pow(rope_base_, -2.0 * i / head_dim_);
    if (!rope_factors_.empty()) freq /= rope_factors_[i];
    const double angle = pos * freq;
    // GGUF's llama layout rotates adjacent pairs; NEOX-style models rotate the two halves.
    const int a = neox_ ? i : 2 * i, b = neox_ ? i + half : 2 * i + 1;
    const double x0 = head[a], x1 = head[b];
    head[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
    head[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
  }
}

std::vector<double> ReferenceModel::step(int32_t token) {
  const int q_dim = n_heads_ * head_dim_, kv_dim = n_kv_heads_ * head_dim_;
  std::vector<double> x(embedding_.w.begin() + size_t(token) * n_embd_,
                        embedding_.w.begin() + size_t(token + 1) * n_embd_);
  for (Layer& L : layers_) {
    const std::vector<double> h = rms_norm(x, L.attn_norm);
    std::vector<double> q = matvec(L.wq, h, q_dim), k = matvec(L.wk, h, kv_dim), v = matvec(L.wv, h, kv_dim);
    for (size_t i = 0; i < L.bq.size(); ++i) q[i] += L.bq[i];
    for (size_t i = 0; i < L.bk.size(); ++i) k[i] += L.bk[i];
    for (size_t i = 0; i < L.bv.size(); ++i) v[i] += L.bv[i];
    auto per_head = [&](std::vector<double>& t, int heads, const std::vector<double>& norm) {
      for (int hd = 0; hd < heads; ++hd) {
        double* head = t.data() + size_t(hd) * head_dim_;
        if (!norm.empty()) {
          std::vector<double> one(head, head + head_dim_);
          one = rms_norm(one, norm);
          std::copy(one.begin(), one.end(), head);
        }
        rotate(head, pos_);
      }
    };
    per_head(q, n_heads_, L.q_norm);
    per_head(k, n_kv_heads_, L.k_norm);
    L.keys.push_back(k);
    L.values.push_back(v);

    std::vector<double> attn(q_dim, 0.0);
    const int group = n_heads_ / n_kv_heads_;
    for (int hd = 0; hd < n_heads_; ++hd) {
      const int kvh = hd / group;
      std::vector<double> scores(L.keys.size());
      for (size_t p = 0; p < L.keys.size(); ++p) {
        double s = 0;
        for (int d = 0; d < head_dim_; ++d) s += q[hd * head_dim_ + d] * L.keys[p][kvh * head_dim_ + d];
        scores[p] = s / std::sqrt(double(head_dim_));
      }
      const double mx = *std::max_element(scores.begin(), scores.end());
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - mx));
      for (size_t p = 0; p < scores.size(); ++p) {
        for (int d = 0; d < head_dim_; ++d) {
          attn[hd * head_dim_ + d] += scores[p] / sum * L.values[p][kvh * head_dim_ + d];
        }
      }
    }
    const std::vector<double> o = matvec(L.wo, attn, n_embd_);
    for (int i = 0; i < n_embd_; ++i) x[i] += o[i];

    const std::vector<double> h2 = rms_norm(x, L.ffn_norm);
    const std::vector<double> g = matvec(L.gate, h2, n_ff_), u = matvec(L.up, h2, n_ff_);
    std::vector<double> act(n_ff_);
    for (int i = 0; i < n_ff_; ++i) act[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    const std::vector<double> d = matvec(L.down, act, n_embd_);
    for (int i = 0; i < n_embd_; ++i) x[i] += d[i];
  }
  ++pos_;
  return matvec(output_, rms_norm(x, output_norm_), n_vocab_);
}

std::vector<int32_t> ReferenceModel::greedy(const std::vector<int32_t>& prompt, int n) {
  reset();
  std::vector<double> logits;
  for (int32_t t : prompt) logits = step(t);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (i + 1 < n) logits = step(next);
  }
  return out;
}

}  // namespace px::testing
