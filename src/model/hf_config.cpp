#include "model/hf_config.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <numbers>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/hf_json.h"

namespace px {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxConfigBytes = 16 << 20;
constexpr int kMaxConfigDepth = 32;
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxContext = 1 << 24;
constexpr int64_t kMaxVocab = 1 << 24;

// What differs between the supported architectures, including the transformers config
// class defaults for fields a config.json may leave out.
struct ArchSpec {
  std::string_view architecture;
  std::string_view model_type;
  Arch arch;
  std::optional<int> default_kv_heads;  // nullopt: num_attention_heads
  std::optional<int> default_head_dim;  // nullopt: hidden_size / num_attention_heads
  int default_max_position_embeddings;
  bool qkv_bias_always;                 // Qwen2: q/k/v biases whatever the config says
  bool qk_norm;
};

constexpr ArchSpec kArchs[] = {
    {"LlamaForCausalLM", "llama", Arch::Llama, std::nullopt, std::nullopt, 2048, false, false},
    {"MistralForCausalLM", "mistral", Arch::Llama, 8, std::nullopt, 4096 * 32, false, false},
    {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2, 32, std::nullopt, 32768, true, false},
    {"Qwen3ForCausalLM", "qwen3", Arch::Qwen3, 32, 128, 32768, false, true},
};

std::string shown(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Typed, range-checked access to one JSON object of the config; `prefix` ("rope_scaling.")
// makes nested fields readable in errors. A null value counts as absent, as in Python.
class Fields {
 public:
  Fields(const json& object, const std::string& source, std::string prefix = "")
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const json* find(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Present, possibly as null (null and absent can mean different defaults).
  bool contains(std::string_view key) const { return object_.contains(key); }

  [[noreturn]] void bad(std::string_view key, std::string_view expected, const json& v) const {
    fail("{}: config field \"{}{}\" must be {}, found {} {}", source_, prefix_, key, expected,
         v.type_name(), shown(v));
  }
  [[noreturn]] void unsupported(std::string_view key, const json& v, std::string_view why) const {
    fail("{}: config field \"{}{}\" = {} is not supported: {}", source_, prefix_, key, shown(v), why);
  }

  std::optional<int64_t> find_int(std::string_view key, int64_t lo, int64_t hi) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) bad(key, "an integer", *v);
    // Above INT64_MAX only an unsigned JSON number can be; it is out of range anyway.
    const bool huge = v->is_number_unsigned() &&
                      v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max());
    const int64_t x = huge ? std::numeric_limits<int64_t>::max() : v->get<int64_t>();
    if (x < lo || x > hi) {
      fail("{}: config field \"{}{}\" = {} is out of range ({}..{})", source_, prefix_, key,
           shown(*v), lo, hi);
    }
    return x;
  }
  int get_int(std::string_view key, int64_t lo, int64_t hi) const {
    const auto x = find_int(key, lo, hi);
    if (!x) fail("{}: config field \"{}{}\" is missing", source_, prefix_, key);
    return static_cast<int>(*x);
  }
  int int_or(std::string_view key, int64_t lo, int64_t hi, int fallback) const {
    return static_cast<int>(find_int(key, lo, hi).value_or(fallback));
  }

  // Integers are accepted for floats (rope_theta: 1000000).
  std::optional<double> find_float(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad(key, "a number", *v);
    return v->get<double>();
  }
  double float_or(std::string_view key, double fallback) const {
    return find_float(key).value_or(fallback);
  }

  std::optional<bool> find_bool(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) bad(key, "true or false", *v);
    return v->get<bool>();
  }

  std::optional<std::string> find_string(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) bad(key, "a string", *v);
    return v->get<std::string>();
  }

  // An int or a list of ints (bos/eos token ids).
  std::vector<int> int_list(std::string_view key) const {
    const json* v = find(key);
    if (!v) return {};
    auto one = [&](const json& x) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > kMaxVocab) {
        bad(key, "a token id or a list of token ids", *v);
      }
      return static_cast<int>(x.get<int64_t>());
    };
    if (!v->is_array()) return {one(*v)};
    std::vector<int> out;
    for (const json& x : *v) out.push_back(one(x));
    return out;
  }

 private:
  const json& object_;
  const std::string& source_;
  std::string prefix_;
};

const ArchSpec& find_arch(const Fields& f, const std::string& source) {
  if (const json* list = f.find("architectures")) {
    if (!list->is_array() || list->empty()) f.bad("architectures", "a list of class names", *list);
    std::vector<std::string> names;
    for (const json& name : *list) {
      if (!name.is_string()) f.bad("architectures", "a list of class names", *list);
      for (const ArchSpec& spec : kArchs) {
        if (spec.architecture == name.get_ref<const std::string&>()) return spec;
      }
      names.push_back(escape_for_message(name.get<std::string>()));
    }
    fail("{}: architecture {} is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
         "Qwen2ForCausalLM, Qwen3ForCausalLM)",
         source, fmt::join(names, ", "));
  }
  const auto model_type = f.find_string("model_type");
  if (!model_type) fail("{}: config has neither \"architectures\" nor \"model_type\"", source);
  for (const ArchSpec& spec : kArchs) {
    if (spec.model_type == *model_type) return spec;
  }
  fail("{}: model_type \"{}\" is not supported (supported: llama, mistral, qwen2, qwen3)", source,
       escape_for_message(*model_type));
}

// Refuses switches that would change the computation into one we do not implement.
void check_unsupported_features(const Fields& f, const ArchSpec& spec) {
  if (const auto act = f.find_string("hidden_act"); act && *act != "silu" && *act != "swish") {
    f.unsupported("hidden_act", *f.find("hidden_act"), "only silu is implemented");
  }
  if (f.find_bool("mlp_bias").value_or(false)) {
    f.unsupported("mlp_bias", *f.find("mlp_bias"), "MLP projections without biases only");
  }
  if (!spec.qkv_bias_always && f.find_bool("attention_bias").value_or(false)) {
    f.unsupported("attention_bias", *f.find("attention_bias"),
                  "it adds biases to q/k/v and the output projection, which is not implemented");
  }
  if (const auto partial = f.find_float("partial_rotary_factor"); partial && *partial != 1.0) {
    f.unsupported("partial_rotary_factor", *f.find("partial_rotary_factor"),
                  "rotary embeddings must cover the whole head");
  }
  if (const json* q = f.find("quantization_config")) {
    f.unsupported("quantization_config", q->contains("quant_method") ? (*q)["quant_method"] : *q,
                  "quantized checkpoints cannot be loaded; use F32/F16/BF16 weights or GGUF");
  }
}

// Reads the rope scaling object: the legacy "rope_scaling" or a flat transformers v5
// "rope_parameters" (which also carries rope_theta).
HfRopeScaling read_rope_scaling(const json& object, const std::string& source,
                                const std::string& prefix, const Fields& top) {
  const Fields f(object, source, prefix);
  std::optional<std::string> type = f.find_string("rope_type");
  if (const auto legacy = f.find_string("type")) {
    if (type && *type != *legacy) {
      fail("{}: config fields \"{}rope_type\" ({}) and \"{}type\" ({}) disagree", source, prefix,
           *type, prefix, *legacy);
    }
    type = legacy;
  }
  HfRopeScaling s;
  if (!type || *type == "default") return s;
  if (*type == "linear") {
    s.type = HfRopeScalingType::Linear;
    const auto factor = f.find_float("factor");
    if (!factor) fail("{}: config field \"{}factor\" is missing (needed by linear scaling)", source, prefix);
    s.factor = *factor;
  } else if (*type == "llama3") {
    // Defaults as in llama.cpp's converter. original_max_position_embeddings: the scaling
    // object's (what transformers reads), else the top-level field (what llama.cpp reads).
    s.type = HfRopeScalingType::Llama3;
    s.factor = f.float_or("factor", 8.0);
    s.low_freq_factor = f.float_or("low_freq_factor", 1.0);
    s.high_freq_factor = f.float_or("high_freq_factor", 4.0);
    s.original_max_position_embeddings = f.int_or(
        "original_max_position_embeddings", 1, kMaxContext,
        top.int_or("original_max_position_embeddings", 1, kMaxContext, 8192));
    if (!(s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
          std::isfinite(s.high_freq_factor))) {
      fail("{}: llama3 rope scaling needs 0 < {}low_freq_factor < {}high_freq_factor (got {} and {})",
           source, prefix, prefix, s.low_freq_factor, s.high_freq_factor);
    }
  } else {
    f.unsupported(f.has("rope_type") ? "rope_type" : "type",
                  *f.find(f.has("rope_type") ? "rope_type" : "type"),
                  "supported rope scaling types are default, linear and llama3");
  }
  if (!(s.factor >= 1 && s.factor < 1e6)) {
    fail("{}: config field \"{}factor\" = {} is out of range (1 to 1e6)", source, prefix, s.factor);
  }
  return s;
}

void read_rope(const Fields& f, HfConfig& c) {
  c.rope_theta = f.float_or("rope_theta", 10000.0);
  if (const json* params = f.find("rope_parameters")) {
    if (!params->is_object()) f.bad("rope_parameters", "an object", *params);
    if (!params->contains("rope_type") && !params->contains("rope_theta")) {
      f.unsupported("rope_parameters", *params,
                    "per-layer-type rope parameters are not implemented");
    }
    c.rope_theta = Fields(*params, c.source, "rope_parameters.").float_or("rope_theta", c.rope_theta);
    c.rope_scaling = read_rope_scaling(*params, c.source, "rope_parameters.", f);
  } else if (const json* scaling = f.find("rope_scaling")) {
    if (!scaling->is_object()) f.bad("rope_scaling", "an object or null", *scaling);
    c.rope_scaling = read_rope_scaling(*scaling, c.source, "rope_scaling.", f);
  }
  if (!(c.rope_theta > 1 && std::isfinite(c.rope_theta))) {
    fail("{}: config field \"rope_theta\" = {} is out of range (above 1)", c.source, c.rope_theta);
  }
}

// Mistral v0.1 attends over a sliding window; Qwen2/3 can switch one on for their upper
// layers. See HfConfig::sliding_window for why knowing the window is enough.
void read_sliding_window(const Fields& f, const ArchSpec& spec, HfConfig& c) {
  bool in_use = false;
  if (spec.model_type == "mistral") {
    in_use = true;
  } else if (spec.arch == Arch::Qwen2 || spec.arch == Arch::Qwen3) {
    if (const json* types = f.find("layer_types")) {
      if (!types->is_array()) f.bad("layer_types", "a list of attention types", *types);
      for (const json& t : *types) {
        if (!t.is_string()) f.bad("layer_types", "a list of attention types", *types);
        if (t == "sliding_attention") in_use = true;
      }
    } else if (f.find_bool("use_sliding_window").value_or(false)) {
      const int first_sliding = f.int_or("max_window_layers", 0, kMaxLayers, 28);
      in_use = first_sliding < c.num_hidden_layers;
    }
  }
  if (!in_use) return;
  // Absent means the config class default (4096); an explicit null means no window.
  if (f.has("sliding_window")) {
    c.sliding_window = static_cast<int>(*f.find_int("sliding_window", 1, kMaxContext));
  } else if (!f.contains("sliding_window")) {
    c.sliding_window = 4096;
  }
}

}  // namespace

int HfConfig::context_length() const {
  return sliding_window ? std::min(max_position_embeddings, *sliding_window) : max_position_embeddings;
}

HfConfig HfConfig::parse(std::string_view json_text, const std::string& source) {
  const json root = parse_strict_json(json_text, source, "the config", kMaxConfigDepth);
  if (!root.is_object()) fail("{}: the config must be a JSON object, found {}", source, root.type_name());
  const Fields f(root, source);
  const ArchSpec& spec = find_arch(f, source);
  check_unsupported_features(f, spec);

  HfConfig c;
  c.source = source;
  c.architecture = std::string(spec.architecture);
  c.model_type = std::string(spec.model_type);
  c.arch = spec.arch;
  c.hidden_size = f.get_int("hidden_size", 1, kMaxDim);
  c.intermediate_size = f.get_int("intermediate_size", 1, kMaxDim);
  c.num_hidden_layers = f.get_int("num_hidden_layers", 1, kMaxLayers);
  c.num_attention_heads = f.get_int("num_attention_heads", 1, kMaxHeads);
  c.vocab_size = f.get_int("vocab_size", 1, kMaxVocab);
  c.num_key_value_heads = f.int_or("num_key_value_heads", 1, kMaxHeads,
                                   spec.default_kv_heads.value_or(c.num_attention_heads));
  // An explicit null means "same as the heads" in every config class.
  if (f.contains("num_key_value_heads") && !f.has("num_key_value_heads")) {
    c.num_key_value_heads = c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source,
         c.num_attention_heads, c.num_key_value_heads);
  }
  if (f.has("head_dim")) {
    c.head_dim = f.get_int("head_dim", 1, kMaxHeads);
  } else if (spec.default_head_dim && !f.contains("head_dim")) {
    c.head_dim = *spec.default_head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      fail("{}: hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is "
           "given)",
           source, c.hidden_size, c.num_attention_heads);
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail("{}: head_dim {} must be even for rotary embeddings", source, c.head_dim);
  c.max_position_embeddings =
      f.int_or("max_position_embeddings", 1, kMaxContext, spec.default_max_position_embeddings);
  c.rms_norm_eps = f.float_or("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) {
    fail("{}: config field \"rms_norm_eps\" = {} is out of range (0 to 1)", source, c.rms_norm_eps);
  }
  read_rope(f, c);
  c.tie_word_embeddings = f.find_bool("tie_word_embeddings").value_or(false);
  c.qkv_bias = spec.qkv_bias_always;
  c.qk_norm = spec.qk_norm;
  c.torch_dtype = f.find_string("torch_dtype").value_or(f.find_string("dtype").value_or(""));
  c.bos_token_ids = f.int_list("bos_token_id");
  c.eos_token_ids = f.int_list("eos_token_id");
  read_sliding_window(f, spec, c);
  return c;
}

HfConfig HfConfig::load(const std::string& path) {
  const std::string file = std::filesystem::is_directory(path)
                               ? (std::filesystem::path(path) / "config.json").string()
                               : path;
  return parse(read_small_file(file, kMaxConfigBytes, "config file"), file);
}

ModelConfig HfConfig::to_model_config() const {
  ModelConfig m;
  m.arch = arch;
  m.arch_name = arch == Arch::Llama ? "llama" : model_type;
  m.n_layers = num_hidden_layers;
  m.n_embd = hidden_size;
  m.n_heads = num_attention_heads;
  m.n_kv_heads = num_key_value_heads;
  m.head_dim = head_dim;
  m.n_ff = intermediate_size;
  m.n_vocab = vocab_size;
  m.n_ctx_train = context_length();
  m.rms_eps = static_cast<float>(rms_norm_eps);
  m.rope_base = static_cast<float>(rope_theta);
  m.rope_linear_scale =
      rope_scaling.type == HfRopeScalingType::Linear ? static_cast<float>(rope_scaling.factor) : 1.0f;
  m.rope_style = RopeStyle::Neox;
  m.has_qkv_bias = qkv_bias;
  m.has_qk_norm = qk_norm;
  return m;
}

std::vector<float> HfConfig::rope_freq_factors() const {
  if (rope_scaling.type != HfRopeScalingType::Llama3) return {};
  const HfRopeScaling& s = rope_scaling;
  const double context = s.original_max_position_embeddings;
  const double low_freq_wavelen = context / s.low_freq_factor;
  const double high_freq_wavelen = context / s.high_freq_factor;
  std::vector<float> factors;
  factors.reserve(head_dim / 2);
  for (int i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(rope_theta, static_cast<double>(i) / head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double factor;
    if (wavelen < high_freq_wavelen) {
      factor = 1.0;  // high frequencies keep their period
    } else if (wavelen > low_freq_wavelen) {
      factor = s.factor;  // low frequencies are stretched fully
    } else {  // in between, interpolate smoothly
      const double smooth = (context / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      factor = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    factors.push_back(static_cast<float>(factor));
  }
  return factors;
}

}  // namespace px
