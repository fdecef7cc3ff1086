#include "model/hf_tensor_map.h"

#include <charconv>
#include <cstring>

#include "core/error.h"

namespace px {
namespace {

struct NamePair {
  std::string_view hf;
  std::string_view gguf;
};

// Whole-model tensors.
constexpr NamePair kGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// Per-layer tensors, without the "model.layers.N." / "blk.N." prefix and the
// ".weight"/".bias" suffix.
constexpr NamePair kLayer[] = {
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
    {"input_layernorm", "attn_norm"},
    {"post_attention_layernorm", "ffn_norm"},
};

// Maps "<from_prefix>N.<part>.<weight|bias>" to "<to_prefix>N.<part'>.<weight|bias>".
// N is a canonical decimal layer number (no sign, no leading zeros).
std::optional<std::string> map_layer_name(std::string_view name, std::string_view from_prefix,
                                          std::string_view to_prefix, bool hf_to_gguf) {
  if (!name.starts_with(from_prefix)) return std::nullopt;
  name.remove_prefix(from_prefix.size());
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0 || (dot > 1 && name[0] == '0')) return std::nullopt;
  int layer = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, layer);
  if (ec != std::errc() || end != name.data() + dot || layer < 0) return std::nullopt;
  std::string_view rest = name.substr(dot + 1);
  std::string_view suffix;
  for (std::string_view s : {".weight", ".bias"}) {
    if (rest.ends_with(s)) suffix = s;
  }
  if (suffix.empty()) return std::nullopt;
  rest.remove_suffix(suffix.size());
  for (const NamePair& p : kLayer) {
    if ((hf_to_gguf ? p.hf : p.gguf) == rest) {
      return std::string(to_prefix) + std::to_string(layer) + "." +
             std::string(hf_to_gguf ? p.gguf : p.hf) + std::string(suffix);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> hf_to_gguf_tensor_name(std::string_view hf_name) {
  for (const NamePair& p : kGlobal) {
    if (p.hf == hf_name) return std::string(p.gguf);
  }
  return map_layer_name(hf_name, "model.layers.", "blk.", /*hf_to_gguf=*/true);
}

std::optional<std::string> gguf_to_hf_tensor_name(std::string_view gguf_name) {
  for (const NamePair& p : kGlobal) {
    if (p.gguf == gguf_name) return std::string(p.hf);
  }
  return map_layer_name(gguf_name, "blk.", "model.layers.", /*hf_to_gguf=*/false);
}

int64_t hf_to_gguf_qk_row(int64_t hf_row, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t head = hf_row / head_dim;
  const int64_t within = hf_row % head_dim;
  const int64_t j = within / half;  // which half of the head
  const int64_t i = within % half;  // rotary pair
  return head * head_dim + 2 * i + j;
}

int64_t gguf_to_hf_qk_row(int64_t gguf_row, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t head = gguf_row / head_dim;
  const int64_t within = gguf_row % head_dim;
  return head * head_dim + (within % 2) * half + within / 2;
}

void permute_qk_rows_hf_to_gguf(const uint8_t* hf, uint8_t* gguf, int64_t rows, size_t row_bytes,
                                int64_t head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0 || rows % head_dim != 0) {
    fail("Q/K row permutation: {} rows are not whole heads of even size {}", rows, head_dim);
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(gguf + hf_to_gguf_qk_row(r, head_dim) * row_bytes, hf + r * row_bytes, row_bytes);
  }
}

}  // namespace px
