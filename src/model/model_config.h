#pragma once
// Hyperparameters of a decoder-only transformer, read from GGUF metadata ({arch}.* keys).
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/ops.h"

namespace px {

class GgufFile;

enum class Arch { Llama, Qwen2, Qwen3 };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;
  int n_layers = 0;
  int n_embd = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_linear_scale = 1.0f;  // positions are divided by this ("linear" rope scaling)
  RopeStyle rope_style = RopeStyle::Norm;
  bool has_qkv_bias = false;       // qwen2
  bool has_qk_norm = false;        // qwen3

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }

  // Reads and validates every hyperparameter; unsupported architectures or features throw
  // px::Error naming the file and key.
  static ModelConfig from_gguf(const GgufFile& file);
};

// The transformer layers [begin, end) a shard runs. The embedding belongs to the shard with
// begin == 0, the output head to the one with end == n_layers.
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  bool operator==(const LayerRange&) const = default;
};

class GgufWriter;

// Writes the {arch}.* hyperparameters of `config` plus general.architecture / name /
// alignment / file_type (the GGUF file type id of `weight_type`), as llama.cpp reads them.
void write_hparams(GgufWriter& w, const ModelConfig& config, const std::string& name, DType weight_type);

// Parses "B:E" (e.g. "0:16"); throws px::Error on bad syntax.
LayerRange parse_layer_range(const std::string& text);

}  // namespace px
