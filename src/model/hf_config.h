#pragma once
// Hyperparameters of a Hugging Face causal LM, read from its config.json. Supported:
// LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM. Defaults follow
// the transformers config classes where a field may be absent; every field is type- and
// range-checked, and features these architectures can switch on that we do not implement
// (other activations, MLP/output biases, partial rotary, yarn/dynamic/longrope scaling,
// quantized checkpoints) throw px::Error naming the field, never silently change outputs.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.h"

namespace px {

enum class HfRopeScalingType { None, Linear, Llama3 };

struct HfRopeScaling {
  HfRopeScalingType type = HfRopeScalingType::None;
  double factor = 1.0;                          // linear and llama3
  double low_freq_factor = 1.0;                 // llama3
  double high_freq_factor = 4.0;                // llama3
  int original_max_position_embeddings = 8192;  // llama3
};

struct HfConfig {
  std::string source;        // the file it came from, for messages
  std::string architecture;  // "LlamaForCausalLM", ...
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3"
  Arch arch = Arch::Llama;   // Mistral is Arch::Llama: the same graph

  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // default: num_attention_heads
  int head_dim = 0;             // default: hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  HfRopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections have biases: always for Qwen2 (no config key)
  bool qk_norm = false;   // per-head RMS norm of q and k: Qwen3
  std::string torch_dtype;  // "bfloat16", ... ("torch_dtype" or newer "dtype"); "" if absent
  std::vector<int> bos_token_ids;  // an int or a list in the file; empty when absent/null
  std::vector<int> eos_token_ids;
  // Set when sliding-window attention is in use (Mistral v0.1; Qwen with use_sliding_window).
  // It is not implemented: attention over at most `window` tokens equals full attention, so
  // context_length() is capped at the window instead and outputs stay exact.
  std::optional<int> sliding_window;

  int context_length() const;

  // Parses config.json text; `source` names it in errors.
  static HfConfig parse(std::string_view json_text, const std::string& source);
  // Reads `path`: a config.json, or a model directory holding one.
  static HfConfig load(const std::string& path);

  // The engine's view. Weights read from safetensors keep the HF row order of Q and K, whose
  // rotary pairs are (i, i + head_dim/2): rope_style is therefore Neox for every
  // architecture here, llama included (GGUF llama files are permuted to Norm instead; see
  // hf_to_gguf_qk_row). n_ctx_train is context_length(); linear rope scaling goes to
  // rope_linear_scale; llama3 scaling comes from rope_freq_factors().
  ModelConfig to_model_config() const;

  // Llama 3 scaling: one divisor per rotary pair [head_dim / 2], the values llama.cpp's
  // converter stores in rope_freqs.weight. Empty for any other scaling.
  std::vector<float> rope_freq_factors() const;
};

}  // namespace px
