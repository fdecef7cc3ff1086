#pragma once
// How Hugging Face checkpoints map onto the GGUF conventions the rest of the engine uses:
// tensor names, and the order of the Q and K rows.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace px {

// "model.embed_tokens.weight" -> "token_embd.weight", "model.layers.3.self_attn.q_proj.bias"
// -> "blk.3.attn_q.bias", "lm_head.weight" -> "output.weight", ... nullopt for names outside
// the llama/mistral/qwen2/qwen3 set (e.g. the "rotary_emb.inv_freq" buffers old checkpoints
// carry, which are recomputed from the config).
std::optional<std::string> hf_to_gguf_tensor_name(std::string_view hf_name);
// The inverse: what to look up in a safetensors model for a GGUF tensor name.
std::optional<std::string> gguf_to_hf_tensor_name(std::string_view gguf_name);

// Q/K row order. HF stores each head's rows so that rotary pairs are (i, i + head_dim/2)
// (rotate_half, GGML's NEOX RoPE). llama.cpp's converter permutes the rows of q_proj and
// k_proj of LlamaForCausalLM/MistralForCausalLM (not Qwen) so that pairs become adjacent,
// (2i, 2i + 1), GGML's NORM RoPE: per head, reshape(2, head_dim/2).swapaxes. Within a head,
// HF row j * head_dim/2 + i (j in {0, 1}) becomes GGUF row 2i + j. The heads are those of
// the matrix: num_attention_heads for q_proj, num_key_value_heads for k_proj. Biases of
// those projections, if any, follow the same mapping.
// Loading safetensors for compute needs none of this (use RopeStyle::Neox); it is for
// converting between the formats.
int64_t hf_to_gguf_qk_row(int64_t hf_row, int64_t head_dim);
int64_t gguf_to_hf_qk_row(int64_t gguf_row, int64_t head_dim);

// Copies a [rows x row_bytes] Q or K matrix from HF row order to GGUF (NORM) row order.
// rows must be a multiple of head_dim, and head_dim even.
void permute_qk_rows_hf_to_gguf(const uint8_t* hf, uint8_t* gguf, int64_t rows, size_t row_bytes,
                                int64_t head_dim);

}  // namespace px
