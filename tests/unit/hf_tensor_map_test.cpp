// HF <-> GGUF tensor names, and the Q/K row order against llama.cpp's converter permute
// (reimplemented here as the numpy reshape/swapaxes it is) and against RoPE itself.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/ops.h"
#include "model/hf_tensor_map.h"

namespace px {
namespace {

TEST(HfTensorMap, MapsEveryTensorOfTheSupportedArchitectures) {
  const std::pair<const char*, const char*> pairs[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
      {"model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight"},
      {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"},
      {"model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight"},
      {"model.layers.7.self_attn.q_proj.bias", "blk.7.attn_q.bias"},
      {"model.layers.7.self_attn.k_proj.bias", "blk.7.attn_k.bias"},
      {"model.layers.7.self_attn.v_proj.bias", "blk.7.attn_v.bias"},
      {"model.layers.12.self_attn.q_norm.weight", "blk.12.attn_q_norm.weight"},
      {"model.layers.12.self_attn.k_norm.weight", "blk.12.attn_k_norm.weight"},
      {"model.layers.31.mlp.gate_proj.weight", "blk.31.ffn_gate.weight"},
      {"model.layers.31.mlp.up_proj.weight", "blk.31.ffn_up.weight"},
      {"model.layers.31.mlp.down_proj.weight", "blk.31.ffn_down.weight"},
      {"model.layers.100.input_layernorm.weight", "blk.100.attn_norm.weight"},
      {"model.layers.100.post_attention_layernorm.weight", "blk.100.ffn_norm.weight"},
  };
  for (const auto& [hf, gguf] : pairs) {
    EXPECT_EQ(hf_to_gguf_tensor_name(hf), gguf) << hf;
    EXPECT_EQ(gguf_to_hf_tensor_name(gguf), hf) << gguf;
  }
}

TEST(HfTensorMap, NamesOutsideTheMappingMapToNothing) {
  for (const char* name :
       {"model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.01.mlp.up_proj.weight",
        "model.layers.-1.mlp.up_proj.weight", "model.layers.+1.mlp.up_proj.weight",
        "model.layers.99999999999.mlp.up_proj.weight", "model.layers.0.mlp.up_proj",
        "model.layers..mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight.x",
        "model.layers.0", "model.embed_tokens.bias", "lm_head.bias", "blk.0.attn_q.weight", ""}) {
    EXPECT_EQ(hf_to_gguf_tensor_name(name), std::nullopt) << name;
  }
  for (const char* name : {"blk.0.attn_q", "blk.x.attn_q.weight", "rope_freqs.weight",
                           "model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.scale"}) {
    EXPECT_EQ(gguf_to_hf_tensor_name(name), std::nullopt) << name;
  }
}

// llama.cpp's LlamaModel.permute, written as the numpy it is:
//   w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int64_t n_head, int64_t rows,
                                     int64_t cols) {
  const int64_t half = rows / n_head / 2;
  std::vector<float> out(w.size());
  // out has shape [n_head][half][2][cols] and out[h][a][b][c] = w[h][b][a][c].
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t a = 0; a < half; ++a) {
      for (int64_t b = 0; b < 2; ++b) {
        for (int64_t c = 0; c < cols; ++c) {
          out[((h * half + a) * 2 + b) * cols + c] = w[((h * 2 + b) * half + a) * cols + c];
        }
      }
    }
  }
  return out;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(HfTensorMap, QkRowMappingMatchesLlamaCppPermute) {
  constexpr int64_t kHeadDim = 8, kCols = 3;
  // Q with 4 heads, and K with 2 (GQA: llama.cpp permutes K by num_key_value_heads).
  for (int64_t n_head : {4, 2}) {
    const int64_t rows = n_head * kHeadDim;
    const std::vector<float> hf = random_values(rows * kCols, 7 + n_head);
    const std::vector<float> expected = llama_cpp_permute(hf, n_head, rows, kCols);
    std::vector<float> by_row(hf.size());
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(&by_row[hf_to_gguf_qk_row(r, kHeadDim) * kCols], &hf[r * kCols], kCols * sizeof(float));
    }
    EXPECT_EQ(by_row, expected) << n_head << " heads";
    std::vector<float> by_matrix(hf.size());
    permute_qk_rows_hf_to_gguf(reinterpret_cast<const uint8_t*>(hf.data()),
                               reinterpret_cast<uint8_t*>(by_matrix.data()), rows,
                               kCols * sizeof(float), kHeadDim);
    EXPECT_EQ(by_matrix, expected) << n_head << " heads";
  }
}

TEST(HfTensorMap, QkRowMappingsAreInverse) {
  for (int64_t head_dim : {2, 8, 64, 128}) {
    std::vector<bool> hit(3 * head_dim, false);
    for (int64_t r = 0; r < 3 * head_dim; ++r) {
      const int64_t g = hf_to_gguf_qk_row(r, head_dim);
      ASSERT_GE(g, 0);
      ASSERT_LT(g, 3 * head_dim);
      EXPECT_EQ(g / head_dim, r / head_dim) << "rows stay in their head";
      EXPECT_FALSE(hit[g]);
      hit[g] = true;
      EXPECT_EQ(gguf_to_hf_qk_row(g, head_dim), r);
    }
  }
}

// What the permutation is for: NORM RoPE on GGUF-ordered rows equals NEOX RoPE on HF rows.
TEST(HfTensorMap, PermutedRowsUnderNormRopeEqualHfRowsUnderNeoxRope) {
  constexpr int64_t kHeadDim = 16;
  std::vector<float> freqs(kHeadDim / 2);
  for (int64_t i = 0; i < kHeadDim / 2; ++i) freqs[i] = std::pow(10000.0f, -2.0f * i / kHeadDim);
  std::vector<float> hf = random_values(kHeadDim, 3);
  std::vector<float> gguf(kHeadDim);
  for (int64_t r = 0; r < kHeadDim; ++r) gguf[hf_to_gguf_qk_row(r, kHeadDim)] = hf[r];
  rope(hf.data(), kHeadDim, 37.0f, freqs.data(), RopeStyle::Neox);
  rope(gguf.data(), kHeadDim, 37.0f, freqs.data(), RopeStyle::Norm);
  for (int64_t r = 0; r < kHeadDim; ++r) EXPECT_FLOAT_EQ(gguf[hf_to_gguf_qk_row(r, kHeadDim)], hf[r]) << r;
}

TEST(HfTensorMap, PermuteRejectsRowsThatAreNotWholeHeads) {
  std::vector<uint8_t> in(12), out(12);
  EXPECT_THROW(permute_qk_rows_hf_to_gguf(in.data(), out.data(), 12, 1, 8), Error);
  EXPECT_THROW(permute_qk_rows_hf_to_gguf(in.data(), out.data(), 12, 1, 3), Error);
}

}  // namespace
}  // namespace px
