// HfConfig: config.json of the four supported architectures (fields as published for
// Llama-3.2-1B, Qwen2.5-0.5B, Qwen3-0.6B and Mistral-7B-v0.1), defaults, rope scaling,
// sliding windows, and an error naming the field for everything unsupported or malformed.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numbers>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/hf_config.h"
#include "model/synth.h"

namespace px {
namespace {

using json = nlohmann::json;

constexpr const char* kLlama32_1B = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

constexpr const char* kQwen25_05B = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

constexpr const char* kQwen3_06B = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

constexpr const char* kMistral7B_v01 = R"({
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

HfConfig parse(const json& config) { return HfConfig::parse(config.dump(), "config.json"); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no px::Error thrown)";
}

// `edit` changes a copy of `base`; parsing it must fail naming config.json and `phrase`.
void expect_rejected(const char* base, const std::function<void(json&)>& edit, std::string_view phrase) {
  json config = json::parse(base);
  edit(config);
  const std::string message = error_of([&] { parse(config); });
  EXPECT_NE(message.find("config.json: "), std::string::npos) << message;
  EXPECT_NE(message.find(phrase), std::string::npos) << "expected '" << phrase << "' in: " << message;
}

json minimal(const char* architecture) {
  return json{{"architectures", {architecture}}, {"hidden_size", 256}, {"intermediate_size", 512},
              {"num_hidden_layers", 2},          {"num_attention_heads", 8}, {"vocab_size", 1000}};
}

// ---- the four architectures ----

TEST(HfConfig, ParsesLlama32_1B) {
  const HfConfig c = HfConfig::parse(kLlama32_1B, "Llama-3.2-1B/config.json");
  EXPECT_EQ(c.source, "Llama-3.2-1B/config.json");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, HfRopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_ids, std::vector<int>{128000});
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{128001});
  EXPECT_FALSE(c.sliding_window);
  EXPECT_EQ(c.context_length(), 131072);

  const ModelConfig m = c.to_model_config();
  EXPECT_EQ(m.arch, Arch::Llama);
  EXPECT_EQ(m.arch_name, "llama");
  EXPECT_EQ(m.n_layers, 16);
  EXPECT_EQ(m.n_embd, 2048);
  EXPECT_EQ(m.n_heads, 32);
  EXPECT_EQ(m.n_kv_heads, 8);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_EQ(m.n_ff, 8192);
  EXPECT_EQ(m.n_vocab, 128256);
  EXPECT_EQ(m.n_ctx_train, 131072);
  EXPECT_FLOAT_EQ(m.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(m.rope_base, 500000.0f);
  EXPECT_FLOAT_EQ(m.rope_linear_scale, 1.0f);
  // HF keeps Q/K rows in rotate_half order.
  EXPECT_EQ(m.rope_style, RopeStyle::Neox);
  EXPECT_FALSE(m.has_qkv_bias);
  EXPECT_FALSE(m.has_qk_norm);
}

TEST(HfConfig, ParsesQwen25_05B) {
  const HfConfig c = HfConfig::parse(kQwen25_05B, "config.json");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.num_attention_heads, 14);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, HfRopeScalingType::None);
  // Qwen2 projections carry q/k/v biases although the config has no attention_bias key.
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  // use_sliding_window is false: the sliding_window value is not in use.
  EXPECT_FALSE(c.sliding_window);
  EXPECT_EQ(c.context_length(), 32768);
  const ModelConfig m = c.to_model_config();
  EXPECT_EQ(m.arch_name, "qwen2");
  EXPECT_TRUE(m.has_qkv_bias);
  EXPECT_EQ(m.rope_style, RopeStyle::Neox);
}

TEST(HfConfig, ParsesQwen3_06B) {
  const HfConfig c = HfConfig::parse(kQwen3_06B, "config.json");
  EXPECT_EQ(c.arch, Arch::Qwen3);
  // head_dim is given and differs from hidden_size / heads = 64.
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);  // an integer in the file
  EXPECT_EQ(c.rope_scaling.type, HfRopeScalingType::None);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{151645});
  EXPECT_FALSE(c.sliding_window);
  EXPECT_EQ(c.context_length(), 40960);
  const ModelConfig m = c.to_model_config();
  EXPECT_EQ(m.arch_name, "qwen3");
  EXPECT_TRUE(m.has_qk_norm);
  EXPECT_EQ(m.q_dim(), 16 * 128);
}

TEST(HfConfig, ParsesMistral7Bv01WithSlidingWindowCappingTheContext) {
  const HfConfig c = HfConfig::parse(kMistral7B_v01, "config.json");
  EXPECT_EQ(c.architecture, "MistralForCausalLM");
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  ASSERT_TRUE(c.sliding_window);
  EXPECT_EQ(*c.sliding_window, 4096);
  EXPECT_EQ(c.context_length(), 4096);
  const ModelConfig m = c.to_model_config();
  EXPECT_EQ(m.arch_name, "llama");
  EXPECT_EQ(m.n_ctx_train, 4096);
}

TEST(HfConfig, MistralWithNullSlidingWindowUsesTheWholeContext) {
  json c = json::parse(kMistral7B_v01);
  c["sliding_window"] = nullptr;  // Mistral-7B-v0.2 and later
  EXPECT_FALSE(parse(c).sliding_window);
  EXPECT_EQ(parse(c).context_length(), 32768);
}

// ---- defaults ----

TEST(HfConfig, FillsLlamaDefaults) {
  const HfConfig c = parse(minimal("LlamaForCausalLM"));
  EXPECT_EQ(c.num_key_value_heads, 8);  // = num_attention_heads
  EXPECT_EQ(c.head_dim, 32);            // = hidden_size / num_attention_heads
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.rope_scaling.type, HfRopeScalingType::None);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.bos_token_ids.empty());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.torch_dtype, "");
  EXPECT_FALSE(c.sliding_window);
}

TEST(HfConfig, NullHeadCountsAndHeadDimMeanTheDerivedValues) {
  json c = minimal("Qwen3ForCausalLM");
  c["num_key_value_heads"] = nullptr;
  c["head_dim"] = nullptr;
  EXPECT_EQ(parse(c).num_key_value_heads, 8);
  EXPECT_EQ(parse(c).head_dim, 32);
}

TEST(HfConfig, AbsentFieldsTakeTheTransformersClassDefaults) {
  json qwen3 = minimal("Qwen3ForCausalLM");
  qwen3["num_attention_heads"] = 32;
  EXPECT_EQ(parse(qwen3).head_dim, 128);  // Qwen3Config: head_dim = 128
  EXPECT_EQ(parse(qwen3).num_key_value_heads, 32);
  EXPECT_EQ(parse(qwen3).max_position_embeddings, 32768);
  const HfConfig mistral = parse(minimal("MistralForCausalLM"));
  EXPECT_EQ(mistral.num_key_value_heads, 8);
  EXPECT_EQ(mistral.max_position_embeddings, 131072);
  ASSERT_TRUE(mistral.sliding_window);  // MistralConfig: sliding_window = 4096
  EXPECT_EQ(*mistral.sliding_window, 4096);
}

TEST(HfConfig, FallsBackToModelTypeWithoutArchitectures) {
  json c = minimal("LlamaForCausalLM");
  c.erase("architectures");
  c["model_type"] = "qwen2";
  c["num_key_value_heads"] = 2;  // Qwen2Config's default (32) does not divide 8 heads
  EXPECT_EQ(parse(c).arch, Arch::Qwen2);
  EXPECT_EQ(parse(c).architecture, "Qwen2ForCausalLM");
}

TEST(HfConfig, ReadsEosTokenList) {
  json c = json::parse(kLlama32_1B);
  c["eos_token_id"] = {128001, 128008, 128009};  // Llama-3.2-1B-Instruct
  EXPECT_EQ(parse(c).eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
}

TEST(HfConfig, ReadsNewerDtypeKey) {
  json c = minimal("LlamaForCausalLM");
  c["dtype"] = "float16";
  EXPECT_EQ(parse(c).torch_dtype, "float16");
}

// ---- rope scaling ----

TEST(HfConfig, ReadsLinearRopeScaling) {
  json c = minimal("LlamaForCausalLM");
  c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  const HfConfig h = parse(c);
  EXPECT_EQ(h.rope_scaling.type, HfRopeScalingType::Linear);
  EXPECT_FLOAT_EQ(h.to_model_config().rope_linear_scale, 2.0f);
  EXPECT_TRUE(h.rope_freq_factors().empty());
}

TEST(HfConfig, DefaultRopeTypeMeansNoScaling) {
  json c = minimal("LlamaForCausalLM");
  c["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(c).rope_scaling.type, HfRopeScalingType::None);
}

TEST(HfConfig, ReadsTransformersV5RopeParameters) {
  json c = minimal("LlamaForCausalLM");
  c["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "llama3"}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  const HfConfig h = parse(c);
  EXPECT_DOUBLE_EQ(h.rope_theta, 500000.0);
  EXPECT_EQ(h.rope_scaling.type, HfRopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(h.rope_scaling.factor, 8.0);
}

// Llama 3.1 8B's scaling (factor 8) through the config equals the synthetic-model code's
// independent implementation of the same llama.cpp formula.
TEST(HfConfig, Llama3RopeFactorsMatchTheSynthImplementation) {
  json c = json::parse(kLlama32_1B);
  c["hidden_size"] = 4096;
  c["head_dim"] = 128;
  c["rope_scaling"]["factor"] = 8.0;
  const std::vector<float> factors = parse(c).rope_freq_factors();
  const std::vector<float> expected = llama3_rope_factors(128, 500000.0f);
  ASSERT_EQ(factors.size(), 64u);
  for (size_t i = 0; i < factors.size(); ++i) EXPECT_NEAR(factors[i], expected[i], 1e-6) << i;
}

TEST(HfConfig, Llama3RopeFactorsOfLlama32_1B) {
  const HfConfig c = HfConfig::parse(kLlama32_1B, "config.json");
  const std::vector<float> f = c.rope_freq_factors();
  ASSERT_EQ(f.size(), 32u);
  // Wavelength 2*pi*500000^(2i/64) is below 8192/4 up to pair 14 (kept), above 8192 from
  // pair 18 (stretched by the factor 32), smoothly interpolated in between.
  for (int i = 0; i <= 14; ++i) EXPECT_FLOAT_EQ(f[i], 1.0f) << i;
  for (int i = 18; i < 32; ++i) EXPECT_FLOAT_EQ(f[i], 32.0f) << i;
  for (int i = 15; i <= 17; ++i) {
    const double wavelen = 2 * std::numbers::pi * std::pow(500000.0, 2.0 * i / 64);
    const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
    EXPECT_NEAR(f[i], 1.0 / ((1 - smooth) / 32.0 + smooth), 1e-4) << i;
    EXPECT_GT(f[i], f[i - 1]);
  }
}

TEST(HfConfig, Llama3OriginalContextFallsBackToTheTopLevelField) {
  json c = json::parse(kLlama32_1B);
  c["rope_scaling"].erase("original_max_position_embeddings");
  c["original_max_position_embeddings"] = 4096;
  EXPECT_EQ(parse(c).rope_scaling.original_max_position_embeddings, 4096);
  c.erase("original_max_position_embeddings");
  EXPECT_EQ(parse(c).rope_scaling.original_max_position_embeddings, 8192);
}

// ---- sliding windows ----

TEST(HfConfig, QwenSlidingWindowAppliesOnlyWhenSomeLayerUsesIt) {
  json c = json::parse(kQwen25_05B);
  c["use_sliding_window"] = true;
  c["sliding_window"] = 4096;
  c["max_window_layers"] = 21;  // layers 21..23 slide
  ASSERT_TRUE(parse(c).sliding_window);
  EXPECT_EQ(parse(c).context_length(), 4096);
  c["max_window_layers"] = 24;  // no layer slides
  EXPECT_FALSE(parse(c).sliding_window);
}

TEST(HfConfig, QwenLayerTypesDecideTheSlidingWindow) {
  json c = json::parse(kQwen3_06B);
  c["sliding_window"] = 1024;
  c["layer_types"] = json::array();
  for (int i = 0; i < 28; ++i) c["layer_types"].push_back(i < 20 ? "full_attention" : "sliding_attention");
  EXPECT_EQ(parse(c).context_length(), 1024);
  for (auto& t : c["layer_types"]) t = "full_attention";
  EXPECT_FALSE(parse(c).sliding_window);
}

// ---- files ----

TEST(HfConfig, LoadReadsConfigJsonFromADirectory) {
  std::string dir = ::testing::TempDir() + "/hf_config_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::ofstream(dir + "/config.json") << kQwen3_06B;
  EXPECT_EQ(HfConfig::load(dir).arch, Arch::Qwen3);
  EXPECT_EQ(HfConfig::load(dir).source, dir + "/config.json");
  EXPECT_EQ(HfConfig::load(dir + "/config.json").head_dim, 128);
  std::filesystem::remove(dir + "/config.json");
  EXPECT_NE(error_of([&] { HfConfig::load(dir); }).find("cannot open config file"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// ---- errors ----

TEST(HfConfig, RejectsUnsupportedArchitecture) {
  expect_rejected(kLlama32_1B, [](json& c) { c["architectures"] = {"GPT2LMHeadModel"}; },
                  "architecture GPT2LMHeadModel is not supported (supported: LlamaForCausalLM");
}

TEST(HfConfig, RejectsUnsupportedModelType) {
  expect_rejected(kLlama32_1B, [](json& c) { c.erase("architectures"); c["model_type"] = "gemma"; },
                  "model_type \"gemma\" is not supported");
}

TEST(HfConfig, RejectsConfigWithoutArchitectureOrModelType) {
  expect_rejected(kLlama32_1B, [](json& c) { c.erase("architectures"); c.erase("model_type"); },
                  "neither \"architectures\" nor \"model_type\"");
}

TEST(HfConfig, RejectsMalformedArchitectures) {
  expect_rejected(kLlama32_1B, [](json& c) { c["architectures"] = "LlamaForCausalLM"; },
                  "\"architectures\" must be a list of class names, found string");
}

TEST(HfConfig, RejectsMissingRequiredField) {
  expect_rejected(kLlama32_1B, [](json& c) { c.erase("hidden_size"); },
                  "config field \"hidden_size\" is missing");
}

TEST(HfConfig, RejectsIntegerFieldOfWrongType) {
  expect_rejected(kLlama32_1B, [](json& c) { c["hidden_size"] = "2048"; },
                  "config field \"hidden_size\" must be an integer, found string \"2048\"");
  expect_rejected(kLlama32_1B, [](json& c) { c["num_hidden_layers"] = 16.0; },
                  "\"num_hidden_layers\" must be an integer, found number 16.0");
}

TEST(HfConfig, RejectsFloatAndBoolFieldsOfWrongType) {
  expect_rejected(kLlama32_1B, [](json& c) { c["rms_norm_eps"] = "1e-5"; },
                  "\"rms_norm_eps\" must be a number, found string");
  expect_rejected(kLlama32_1B, [](json& c) { c["tie_word_embeddings"] = 1; },
                  "\"tie_word_embeddings\" must be true or false, found number");
  expect_rejected(kLlama32_1B, [](json& c) { c["torch_dtype"] = 16; },
                  "\"torch_dtype\" must be a string");
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"] = "llama3"; },
                  "\"rope_scaling\" must be an object or null");
}

TEST(HfConfig, RejectsOutOfRangeValues) {
  expect_rejected(kLlama32_1B, [](json& c) { c["num_hidden_layers"] = 0; },
                  "\"num_hidden_layers\" = 0 is out of range (1..4096)");
  expect_rejected(kLlama32_1B, [](json& c) { c["vocab_size"] = -5; }, "\"vocab_size\" = -5 is out of range");
  expect_rejected(kLlama32_1B, [](json& c) { c["hidden_size"] = 18446744073709551615u; },
                  "\"hidden_size\" = 18446744073709551615 is out of range");
  expect_rejected(kLlama32_1B, [](json& c) { c["rms_norm_eps"] = 0; }, "\"rms_norm_eps\" = 0 is out of range");
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_theta"] = 1; }, "\"rope_theta\" = 1 is out of range");
}

TEST(HfConfig, RejectsBadTokenIds) {
  expect_rejected(kLlama32_1B, [](json& c) { c["eos_token_id"] = {128001, "x"}; },
                  "\"eos_token_id\" must be a token id or a list of token ids");
  expect_rejected(kLlama32_1B, [](json& c) { c["bos_token_id"] = -1; }, "\"bos_token_id\" must be a token id");
}

TEST(HfConfig, RejectsHeadsNotMultipleOfKvHeads) {
  expect_rejected(kLlama32_1B, [](json& c) { c["num_key_value_heads"] = 5; },
                  "num_attention_heads 32 is not a multiple of num_key_value_heads 5");
}

TEST(HfConfig, RejectsHiddenSizeNotMultipleOfHeadsWithoutHeadDim) {
  expect_rejected(kLlama32_1B, [](json& c) { c.erase("head_dim"); c["hidden_size"] = 2050; },
                  "hidden_size 2050 is not a multiple of num_attention_heads 32");
}

TEST(HfConfig, RejectsOddHeadDim) {
  expect_rejected(kLlama32_1B, [](json& c) { c["head_dim"] = 63; }, "head_dim 63 must be even");
}

TEST(HfConfig, RejectsYarnRopeScaling) {
  expect_rejected(kQwen3_06B,
                  [](json& c) {
                    c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                                         {"original_max_position_embeddings", 32768}};
                  },
                  "config field \"rope_scaling.rope_type\" = \"yarn\" is not supported");
}

TEST(HfConfig, RejectsDynamicRopeScalingGivenAsLegacyType) {
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}}; },
                  "\"rope_scaling.type\" = \"dynamic\" is not supported");
}

TEST(HfConfig, RejectsDisagreeingRopeTypeKeys) {
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"]["type"] = "linear"; },
                  "\"rope_scaling.rope_type\" (llama3) and \"rope_scaling.type\" (linear) disagree");
}

TEST(HfConfig, RejectsLinearScalingWithoutFactorOrBelowOne) {
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"] = {{"type", "linear"}}; },
                  "\"rope_scaling.factor\" is missing");
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"] = {{"type", "linear"}, {"factor", 0.5}}; },
                  "\"rope_scaling.factor\" = 0.5 is out of range");
}

TEST(HfConfig, RejectsLlama3ScalingWithInvertedFrequencyFactors) {
  expect_rejected(kLlama32_1B, [](json& c) { c["rope_scaling"]["high_freq_factor"] = 1.0; },
                  "needs 0 < rope_scaling.low_freq_factor < rope_scaling.high_freq_factor");
}

TEST(HfConfig, RejectsPerLayerTypeRopeParameters) {
  expect_rejected(kLlama32_1B,
                  [](json& c) {
                    c["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}}};
                  },
                  "\"rope_parameters\"");
}

TEST(HfConfig, RejectsUnsupportedActivation) {
  expect_rejected(kLlama32_1B, [](json& c) { c["hidden_act"] = "gelu"; },
                  "config field \"hidden_act\" = \"gelu\" is not supported: only silu");
}

TEST(HfConfig, RejectsMlpBias) {
  expect_rejected(kLlama32_1B, [](json& c) { c["mlp_bias"] = true; }, "\"mlp_bias\" = true is not supported");
}

TEST(HfConfig, RejectsAttentionBiasOutsideQwen2) {
  expect_rejected(kLlama32_1B, [](json& c) { c["attention_bias"] = true; },
                  "\"attention_bias\" = true is not supported");
  expect_rejected(kQwen3_06B, [](json& c) { c["attention_bias"] = true; },
                  "\"attention_bias\" = true is not supported");
  json qwen2 = json::parse(kQwen25_05B);
  qwen2["attention_bias"] = true;  // Qwen2 has exactly these biases whatever the key says
  EXPECT_TRUE(parse(qwen2).qkv_bias);
}

TEST(HfConfig, RejectsPartialRotaryEmbeddings) {
  expect_rejected(kLlama32_1B, [](json& c) { c["partial_rotary_factor"] = 0.5; },
                  "\"partial_rotary_factor\" = 0.5 is not supported");
}

TEST(HfConfig, RejectsQuantizedCheckpoints) {
  expect_rejected(kQwen25_05B, [](json& c) { c["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}}; },
                  "\"quantization_config\" = \"awq\" is not supported: quantized checkpoints");
}

TEST(HfConfig, RejectsInvalidJsonAndDuplicateKeys) {
  EXPECT_NE(error_of([] { HfConfig::parse("{\"hidden_size\": ", "config.json"); })
                .find("config.json: the config is not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { HfConfig::parse("{\"vocab_size\": 1, \"vocab_size\": 2}", "config.json"); })
                .find("has the key \"vocab_size\" twice"),
            std::string::npos);
  EXPECT_NE(error_of([] { HfConfig::parse("[]", "config.json"); }).find("must be a JSON object"),
            std::string::npos);
}

}  // namespace
}  // namespace px
