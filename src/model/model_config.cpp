#include "model/model_config.h"

#include <charconv>
#include <cmath>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "model/model_quantize.h"

namespace px {
namespace {

int positive_int(const GgufFile& file, const std::string& key, int64_t limit) {
  const int64_t v = file.get_int(key);
  if (v <= 0 || v > limit) fail("{}: {} = {} is out of range (1..{})", file.name(), key, v, limit);
  return static_cast<int>(v);
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& file) {
  ModelConfig c;
  c.arch_name = file.get_string("general.architecture");
  const std::string& a = c.arch_name;
  if (a == "llama") {
    c.arch = Arch::Llama;
    c.rope_style = RopeStyle::Norm;
  } else if (a == "qwen2") {
    c.arch = Arch::Qwen2;
    c.rope_style = RopeStyle::Neox;
    c.has_qkv_bias = true;
  } else if (a == "qwen3") {
    c.arch = Arch::Qwen3;
    c.rope_style = RopeStyle::Neox;
    c.has_qk_norm = true;
  } else {
    fail("{}: architecture '{}' is not supported (supported: llama, qwen2, qwen3)", file.name(), a);
  }

  constexpr int64_t kMaxDim = 1 << 20;
  c.n_layers = positive_int(file, a + ".block_count", 4096);
  c.n_embd = positive_int(file, a + ".embedding_length", kMaxDim);
  c.n_ff = positive_int(file, a + ".feed_forward_length", kMaxDim);
  c.n_heads = positive_int(file, a + ".attention.head_count", 4096);
  c.n_kv_heads = c.n_heads;
  if (file.find(a + ".attention.head_count_kv")) {
    c.n_kv_heads = positive_int(file, a + ".attention.head_count_kv", 4096);
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("{}: head_count {} is not a multiple of head_count_kv {}", file.name(), c.n_heads,
         c.n_kv_heads);
  }
  c.n_ctx_train = positive_int(file, a + ".context_length", 1 << 24);

  if (file.find(a + ".attention.key_length")) {
    c.head_dim = positive_int(file, a + ".attention.key_length", 4096);
    const auto value_length = file.find_int(a + ".attention.value_length");
    if (value_length && *value_length != c.head_dim) {
      fail("{}: key_length {} != value_length {} is not supported", file.name(), c.head_dim,
           *value_length);
    }
  } else {
    if (c.n_embd % c.n_heads != 0) {
      fail("{}: embedding_length {} is not a multiple of head_count {}", file.name(), c.n_embd,
           c.n_heads);
    }
    c.head_dim = c.n_embd / c.n_heads;
  }
  if (c.head_dim % 2 != 0) fail("{}: head dimension {} must be even for RoPE", file.name(), c.head_dim);
  if (const auto rope_dims = file.find_int(a + ".rope.dimension_count");
      rope_dims && *rope_dims != c.head_dim) {
    fail("{}: partial rotary embeddings (rope.dimension_count {} < head dim {}) are not supported",
         file.name(), *rope_dims, c.head_dim);
  }

  if (const auto eps = file.find_float(a + ".attention.layer_norm_rms_epsilon")) {
    c.rms_eps = static_cast<float>(*eps);
  } else {
    fail("{}: missing {}.attention.layer_norm_rms_epsilon", file.name(), a);
  }
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) fail("{}: rms epsilon {} out of range", file.name(), c.rms_eps);
  if (const auto base = file.find_float(a + ".rope.freq_base")) c.rope_base = static_cast<float>(*base);
  if (!(c.rope_base > 1 && std::isfinite(c.rope_base))) {
    fail("{}: rope.freq_base {} out of range", file.name(), c.rope_base);
  }

  // Rope scaling: "llama3" comes as the rope_freqs.weight tensor (read by the shard);
  // "linear" divides positions; anything else is refused rather than silently ignored.
  if (const auto type = file.find_string(a + ".rope.scaling.type"); type && *type != "none") {
    if (*type == "linear") {
      const double factor = file.get_float(a + ".rope.scaling.factor");
      if (!(factor >= 1 && factor < 1e6)) fail("{}: rope.scaling.factor {} out of range", file.name(), factor);
      c.rope_linear_scale = static_cast<float>(factor);
    } else if (*type != "llama3") {
      fail("{}: rope scaling type '{}' is not supported (supported: linear, llama3)", file.name(), *type);
    }
  }
  return c;
}

void write_hparams(GgufWriter& w, const ModelConfig& c, const std::string& name, DType weight_type) {
  const std::string a = c.arch_name + ".";
  w.set_string("general.architecture", c.arch_name);
  w.set_string("general.name", name);
  w.set_uint32("general.alignment", 32);
  w.set_uint32("general.file_type", ggml_file_type(weight_type));
  w.set_uint32(a + "vocab_size", static_cast<uint32_t>(c.n_vocab));
  w.set_uint32(a + "context_length", static_cast<uint32_t>(c.n_ctx_train));
  w.set_uint32(a + "embedding_length", static_cast<uint32_t>(c.n_embd));
  w.set_uint32(a + "block_count", static_cast<uint32_t>(c.n_layers));
  w.set_uint32(a + "feed_forward_length", static_cast<uint32_t>(c.n_ff));
  w.set_uint32(a + "attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.set_uint32(a + "attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.set_float32(a + "attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_float32(a + "rope.freq_base", c.rope_base);
  w.set_uint32(a + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  // llama.cpp derives head_dim from embd/heads unless these are present; qwen3 always has them.
  if (c.arch_name == "qwen3" || c.head_dim * c.n_heads != c.n_embd) {
    w.set_uint32(a + "attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.set_uint32(a + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  if (c.rope_linear_scale != 1.0f) {
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_float32(a + "rope.scaling.factor", c.rope_linear_scale);
  }
}

LayerRange parse_layer_range(const std::string& text) {
  const auto colon = text.find(':');
  LayerRange r;
  auto parse = [&](std::string_view s, int& out) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (colon == std::string::npos || !parse(std::string_view(text).substr(0, colon), r.begin) ||
      !parse(std::string_view(text).substr(colon + 1), r.end) || r.begin < 0 || r.end <= r.begin) {
    fail("invalid layer range '{}' (expected BEGIN:END with 0 <= BEGIN < END)", text);
  }
  return r;
}

}  // namespace px
