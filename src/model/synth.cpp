#include "model/synth.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "core/error.h"
#include "model/builtin_vocab.h"
#include "model/gguf.h"
#include "model/model_config.h"
#include "model/gguf_writer.h"
#include "model/model_quantize.h"
#include "model/rng.h"

namespace px {
namespace {

struct PlannedTensor {
  std::string name;
  std::vector<int64_t> dims;  // GGML order
  float mean = 0.f;
  float stddev = 0.f;
  std::vector<float> fixed_values;  // used instead of random values when not empty
};

PlannedTensor random_tensor(std::string name, std::vector<int64_t> dims, float mean,
                            float stddev) {
  PlannedTensor t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.mean = mean;
  t.stddev = stddev;
  return t;
}

void require_positive(const char* field, int64_t value) {
  if (value <= 0) fail("synthetic model: {} must be at least 1 (got {})", field, value);
}

// Tensors in pipeline order: embedding, layers, head (so a shard's tensors sit together).
std::vector<PlannedTensor> plan_tensors(const SynthSpec& spec, int64_t n_vocab) {
  const int64_t embd = spec.n_embd, ff = spec.n_ff, hd = synth_head_dim(spec);
  const int64_t q_width = spec.n_heads * hd, kv_width = spec.n_kv_heads * hd;
  const float output_std = 3.f / std::sqrt(static_cast<float>(embd));
  auto projection = [](std::string name, int64_t fan_in, int64_t fan_out) {
    return random_tensor(std::move(name), {fan_in, fan_out}, 0.f,
                         1.f / std::sqrt(static_cast<float>(fan_in)));
  };
  auto norm = [](std::string name, int64_t n) {
    return random_tensor(std::move(name), {n}, 1.f, 0.1f);
  };
  auto bias = [](std::string name, int64_t n) {
    return random_tensor(std::move(name), {n}, 0.f, 0.1f);
  };

  std::vector<PlannedTensor> plan;
  plan.push_back(random_tensor("token_embd.weight", {embd, n_vocab}, 0.f,
                               spec.tied_embeddings ? output_std : 1.f));
  if (spec.llama3_rope_scaling) {
    PlannedTensor freqs = random_tensor("rope_freqs.weight", {hd / 2}, 0.f, 0.f);
    freqs.fixed_values = llama3_rope_factors(static_cast<int>(hd), spec.rope_base);
    plan.push_back(std::move(freqs));
  }
  for (int layer = 0; layer < spec.n_layers; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    plan.push_back(norm(p + "attn_norm.weight", embd));
    plan.push_back(projection(p + "attn_q.weight", embd, q_width));
    if (spec.arch == "qwen2") plan.push_back(bias(p + "attn_q.bias", q_width));
    plan.push_back(projection(p + "attn_k.weight", embd, kv_width));
    if (spec.arch == "qwen2") plan.push_back(bias(p + "attn_k.bias", kv_width));
    plan.push_back(projection(p + "attn_v.weight", embd, kv_width));
    if (spec.arch == "qwen2") plan.push_back(bias(p + "attn_v.bias", kv_width));
    if (spec.arch == "qwen3") {
      plan.push_back(norm(p + "attn_q_norm.weight", hd));
      plan.push_back(norm(p + "attn_k_norm.weight", hd));
    }
    plan.push_back(projection(p + "attn_output.weight", q_width, embd));
    plan.push_back(norm(p + "ffn_norm.weight", embd));
    plan.push_back(projection(p + "ffn_gate.weight", embd, ff));
    plan.push_back(projection(p + "ffn_up.weight", embd, ff));
    plan.push_back(projection(p + "ffn_down.weight", ff, embd));
  }
  plan.push_back(norm("output_norm.weight", embd));
  if (!spec.tied_embeddings) {
    plan.push_back(random_tensor("output.weight", {embd, n_vocab}, 0.f, output_std));
  }
  return plan;
}

std::vector<float> tensor_values(uint64_t seed, const PlannedTensor& t) {
  if (!t.fixed_values.empty()) return t.fixed_values;
  int64_t n = 1;
  for (int64_t d : t.dims) n *= d;
  NormalRng rng(sub_seed(seed, t.name));
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = rng.normal(t.mean, t.stddev);
  return values;
}

void write_synth_hparams(GgufWriter& w, const SynthSpec& spec, int64_t n_vocab) {
  ModelConfig c;
  c.arch_name = spec.arch;
  c.n_layers = spec.n_layers;
  c.n_embd = spec.n_embd;
  c.n_heads = spec.n_heads;
  c.n_kv_heads = spec.n_kv_heads;
  c.head_dim = synth_head_dim(spec);
  c.n_ff = spec.n_ff;
  c.n_vocab = static_cast<int>(n_vocab);
  c.n_ctx_train = spec.n_ctx;
  c.rms_eps = spec.rms_eps;
  c.rope_base = spec.rope_base;
  write_hparams(w, c, spec.name, spec.type);
  if (spec.llama3_rope_scaling) {  // informational: the factors live in rope_freqs.weight
    const std::string a = spec.arch + ".";
    w.set_string(a + "rope.scaling.type", "llama3");
    w.set_float32(a + "rope.scaling.factor", 8.f);
    w.set_uint32(a + "rope.scaling.original_context_length", 8192);
  }
}

// Token count of a --vocab file, which must hold a vocabulary.
int64_t vocab_token_count(const GgufFile& vocab) {
  const GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || !tokens->is_array() || tokens->array_size() == 0) {
    fail("{}: no tokenizer.ggml.tokens array; --vocab needs a GGUF file with a vocabulary",
         vocab.name());
  }
  return static_cast<int64_t>(tokens->array_size());
}

void copy_tokenizer_keys(GgufWriter& w, const GgufFile& vocab) {
  for (const auto& kv : vocab.metadata()) {
    if (kv.key.rfind("tokenizer.", 0) == 0) w.set_value(kv.key, kv.value);
  }
}

}  // namespace

int synth_head_dim(const SynthSpec& spec) {
  return spec.head_dim != 0 ? spec.head_dim : (spec.n_heads > 0 ? spec.n_embd / spec.n_heads : 0);
}

void validate_synth_spec(const SynthSpec& spec) {
  if (spec.arch != "llama" && spec.arch != "qwen2" && spec.arch != "qwen3") {
    fail("synthetic model: unknown architecture '{}' (accepted: llama, qwen2, qwen3)", spec.arch);
  }
  require_positive("layers", spec.n_layers);
  require_positive("embd", spec.n_embd);
  require_positive("heads", spec.n_heads);
  require_positive("kv heads", spec.n_kv_heads);
  require_positive("ff", spec.n_ff);
  require_positive("ctx", spec.n_ctx);
  if (spec.head_dim < 0) fail("synthetic model: head dim must be positive (got {})", spec.head_dim);
  if (spec.head_dim == 0 && spec.n_embd % spec.n_heads != 0) {
    fail("synthetic model: embd {} is not divisible by heads {} (choose other sizes or give "
         "the head dim explicitly)", spec.n_embd, spec.n_heads);
  }
  if (spec.n_heads % spec.n_kv_heads != 0) {
    fail("synthetic model: heads {} is not a multiple of kv heads {} (grouped-query attention "
         "shares each kv head among a whole number of query heads)", spec.n_heads,
         spec.n_kv_heads);
  }
  const int hd = synth_head_dim(spec);
  if (hd % 2 != 0) fail("synthetic model: head dim {} must be even (rotary pairs)", hd);
  if (!(spec.rope_base > 0.f)) fail("synthetic model: rope base must be > 0 (got {})", spec.rope_base);
  if (!(spec.rms_eps > 0.f)) fail("synthetic model: rms eps must be > 0 (got {})", spec.rms_eps);
  if (!is_weight_storage_type(spec.type)) {
    fail("synthetic model: type {} cannot store weights (accepted: f32, f16, bf16, q8_0, q4_0, "
         "q4_k, q6_k)", dtype_name(spec.type));
  }
  // Most weight rows are n_embd long; a type that cannot hold them would leave nothing in it.
  const int64_t block = dtype_info(spec.type).block_size;
  if (spec.n_embd % block != 0) {
    fail("synthetic model: type {} needs embd to be a multiple of its block size {} (got {})",
         dtype_name(spec.type), block, spec.n_embd);
  }
}

std::vector<float> llama3_rope_factors(int head_dim, float rope_base) {
  constexpr double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  constexpr double original_context = 8192.0;
  const double low_freq_wavelen = original_context / low_freq_factor;
  const double high_freq_wavelen = original_context / high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(rope_base), double(i) / head_dim);
    const double wavelen = 2.0 * 3.14159265358979323846 / freq;
    double f;
    if (wavelen < high_freq_wavelen) {
      f = 1.0;  // high frequencies: unchanged
    } else if (wavelen > low_freq_wavelen) {
      f = factor;  // low frequencies: fully stretched
    } else {  // in between: interpolate smoothly
      const double smooth = (original_context / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

void write_synthetic_model(const SynthSpec& spec, const std::string& out_path) {
  validate_synth_spec(spec);
  std::shared_ptr<GgufFile> vocab;
  if (!spec.vocab_path.empty()) vocab = GgufFile::open(spec.vocab_path);
  const int64_t n_vocab = vocab ? vocab_token_count(*vocab)
                                : static_cast<int64_t>(builtin_vocab().tokens.size());

  GgufWriter writer;
  write_synth_hparams(writer, spec, n_vocab);
  if (vocab) {
    copy_tokenizer_keys(writer, *vocab);
  } else {
    write_builtin_vocab(writer);
  }

  for (const PlannedTensor& t : plan_tensors(spec, n_vocab)) {
    const std::vector<float> values = tensor_values(spec.seed, t);
    DType type = DType::F32;
    if (t.dims.size() >= 2) {
      type = storage_type_for_row(spec.type, t.dims[0]);
      if (type != spec.type) {
        spdlog::info("{}: row length {} is not a multiple of the {} block size {}; storing F16",
                     t.name, t.dims[0], dtype_name(spec.type), dtype_info(spec.type).block_size);
      }
    }
    writer.add_tensor(t.name, t.dims, type, encode_rows(type, values, t.dims[0]));
  }
  writer.write(out_path);
}

}  // namespace px
