// Model tooling: synthetic model writer, model quantizer, model info, built-in vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/quant.h"
#include "model/builtin_vocab.h"
#include "model/gguf.h"
#include "model/model_info.h"
#include "model/model_quantize.h"
#include "model/synth.h"

namespace px {
namespace {

namespace fs = std::filesystem;

class ModelToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("px_model_tools_") + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::shared_ptr<GgufFile> synth(const SynthSpec& spec, const std::string& name = "m.gguf") {
    write_synthetic_model(spec, path(name));
    return GgufFile::open(path(name));
  }

  fs::path dir_;
};

struct ExpectedTensor {
  std::vector<int64_t> dims;
  DType type;
};
using TensorTable = std::map<std::string, ExpectedTensor>;

TensorTable actual_tensors(const GgufFile& file) {
  TensorTable table;
  for (const auto& t : file.tensors()) table[t.name] = {t.dims, t.type};
  return table;
}

// What llama.cpp expects of a llama-style model, written out by hand from its conventions.
TensorTable expected_llama_tensors(int layers, int64_t embd, int64_t q_width, int64_t kv_width,
                                   int64_t ff, int64_t vocab, DType w, bool tied) {
  TensorTable t;
  t["token_embd.weight"] = {{embd, vocab}, w};
  t["output_norm.weight"] = {{embd}, DType::F32};
  if (!tied) t["output.weight"] = {{embd, vocab}, w};
  for (int i = 0; i < layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    t[p + "attn_norm.weight"] = {{embd}, DType::F32};
    t[p + "attn_q.weight"] = {{embd, q_width}, w};
    t[p + "attn_k.weight"] = {{embd, kv_width}, w};
    t[p + "attn_v.weight"] = {{embd, kv_width}, w};
    t[p + "attn_output.weight"] = {{q_width, embd}, w};
    t[p + "ffn_norm.weight"] = {{embd}, DType::F32};
    t[p + "ffn_gate.weight"] = {{embd, ff}, w};
    t[p + "ffn_up.weight"] = {{embd, ff}, w};
    t[p + "ffn_down.weight"] = {{ff, embd}, w};
  }
  return t;
}

void expect_same_tensors(const TensorTable& expected, const TensorTable& actual) {
  EXPECT_EQ(expected.size(), actual.size());
  for (const auto& [name, e] : expected) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << "missing tensor " << name;
      continue;
    }
    EXPECT_EQ(it->second.dims, e.dims) << name;
    EXPECT_EQ(dtype_name(it->second.type), dtype_name(e.type)) << name;
  }
  for (const auto& [name, a] : actual) {
    if (!expected.count(name)) ADD_FAILURE() << "unexpected tensor " << name;
  }
}

std::vector<float> tensor_values(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.find_tensor(name);
  if (!t) throw std::runtime_error("no tensor " + name);
  return decode_rows(t->type, file.tensor_data(*t), t->n_elements, t->dims[0]);
}

std::vector<uint8_t> tensor_bytes(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.find_tensor(name);
  if (!t) throw std::runtime_error("no tensor " + name);
  const uint8_t* p = file.tensor_data(*t);
  return {p, p + t->n_bytes};
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int64_t n_vocab_of(const GgufFile& file) {
  return static_cast<int64_t>(file.get("tokenizer.ggml.tokens").array_size());
}

TEST_F(ModelToolsTest, SynthLlamaWithGqaHasLlamaCppTensorsAndMetadata) {
  SynthSpec spec;  // llama, 2 layers, embd 64, 4 heads, 2 kv heads, ff 128
  const auto file = synth(spec);
  const int64_t vocab = n_vocab_of(*file);
  expect_same_tensors(expected_llama_tensors(2, 64, 64, 32, 128, vocab, DType::F32, false),
                      actual_tensors(*file));
  EXPECT_EQ(file->get_string("general.architecture"), "llama");
  EXPECT_EQ(file->get_string("general.name"), "synthetic");
  EXPECT_EQ(file->get_int("general.file_type"), 0);
  EXPECT_EQ(file->get_int("general.alignment"), 32);
  EXPECT_EQ(file->get_int("llama.block_count"), 2);
  EXPECT_EQ(file->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(file->get_int("llama.feed_forward_length"), 128);
  EXPECT_EQ(file->get_int("llama.attention.head_count"), 4);
  EXPECT_EQ(file->get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(file->get_int("llama.context_length"), 2048);
  EXPECT_EQ(file->get_int("llama.rope.dimension_count"), 16);
  EXPECT_EQ(file->get_int("llama.vocab_size"), vocab);
  EXPECT_FLOAT_EQ(static_cast<float>(file->get_float("llama.rope.freq_base")), 10000.f);
  EXPECT_FLOAT_EQ(static_cast<float>(file->get_float("llama.attention.layer_norm_rms_epsilon")),
                  1e-5f);
  // head_dim equals embd/heads, so llama.cpp needs no explicit key_length.
  EXPECT_EQ(file->find("llama.attention.key_length"), nullptr);
}

TEST_F(ModelToolsTest, SynthQwen2AddsF32QkvBiases) {
  SynthSpec spec;
  spec.arch = "qwen2";
  const auto file = synth(spec);
  TensorTable expected =
      expected_llama_tensors(2, 64, 64, 32, 128, n_vocab_of(*file), DType::F32, false);
  for (int i = 0; i < 2; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    expected[p + "attn_q.bias"] = {{64}, DType::F32};
    expected[p + "attn_k.bias"] = {{32}, DType::F32};
    expected[p + "attn_v.bias"] = {{32}, DType::F32};
  }
  expect_same_tensors(expected, actual_tensors(*file));
  EXPECT_EQ(file->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(file->get_int("qwen2.attention.head_count_kv"), 2);
}

TEST_F(ModelToolsTest, SynthQwen3AddsQkNormsAndKeyLength) {
  SynthSpec spec;
  spec.arch = "qwen3";
  spec.head_dim = 32;  // q width 4*32 = 128 differs from embd 64, as in real Qwen3 models
  const auto file = synth(spec);
  TensorTable expected =
      expected_llama_tensors(2, 64, 128, 64, 128, n_vocab_of(*file), DType::F32, false);
  for (int i = 0; i < 2; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    expected[p + "attn_q_norm.weight"] = {{32}, DType::F32};
    expected[p + "attn_k_norm.weight"] = {{32}, DType::F32};
  }
  expect_same_tensors(expected, actual_tensors(*file));
  EXPECT_EQ(file->get_int("qwen3.attention.key_length"), 32);
  EXPECT_EQ(file->get_int("qwen3.attention.value_length"), 32);
  EXPECT_EQ(file->get_int("qwen3.rope.dimension_count"), 32);
}

TEST_F(ModelToolsTest, SynthTiedEmbeddingsOmitOutputWeight) {
  SynthSpec spec;
  spec.tied_embeddings = true;
  const auto file = synth(spec);
  expect_same_tensors(
      expected_llama_tensors(2, 64, 64, 32, 128, n_vocab_of(*file), DType::F32, true),
      actual_tensors(*file));
}

TEST_F(ModelToolsTest, SynthSameSeedGivesIdenticalBytesAndOtherSeedDiffers) {
  SynthSpec spec;
  write_synthetic_model(spec, path("a.gguf"));
  write_synthetic_model(spec, path("b.gguf"));
  spec.seed = 2;
  write_synthetic_model(spec, path("c.gguf"));
  const auto a = read_bytes(path("a.gguf"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, read_bytes(path("b.gguf")));
  EXPECT_EQ(a.size(), read_bytes(path("c.gguf")).size());
  EXPECT_NE(a, read_bytes(path("c.gguf")));
}

TEST_F(ModelToolsTest, SynthTensorValuesDependOnlyOnSeedAndName) {
  SynthSpec two;
  SynthSpec three = two;
  three.n_layers = 3;
  three.tied_embeddings = true;
  const auto a = synth(two, "two.gguf");
  const auto b = synth(three, "three.gguf");
  // token_embd is left out: tying the embeddings changes its scale.
  for (const char* name : {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output_norm.weight"}) {
    EXPECT_EQ(tensor_bytes(*a, name), tensor_bytes(*b, name)) << name;
  }
  EXPECT_NE(tensor_bytes(*a, "blk.0.attn_q.weight"), tensor_bytes(*a, "blk.1.attn_q.weight"));
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST_F(ModelToolsTest, SynthWeightScalesFollowTheDocumentedDistributions) {
  SynthSpec spec;
  spec.n_embd = 128;
  spec.n_ff = 256;
  spec.n_layers = 1;
  const auto file = synth(spec);
  // Thousands of samples per tensor: 10% bounds are many standard errors wide.
  EXPECT_NEAR(std_of(tensor_values(*file, "blk.0.attn_q.weight")), 1.0 / std::sqrt(128.0),
              0.1 / std::sqrt(128.0));
  EXPECT_NEAR(std_of(tensor_values(*file, "blk.0.ffn_down.weight")), 1.0 / std::sqrt(256.0),
              0.1 / std::sqrt(256.0));
  EXPECT_NEAR(std_of(tensor_values(*file, "token_embd.weight")), 1.0, 0.1);
  EXPECT_NEAR(std_of(tensor_values(*file, "output.weight")), 3.0 / std::sqrt(128.0),
              0.3 / std::sqrt(128.0));
  const auto norm = tensor_values(*file, "blk.0.ffn_norm.weight");
  EXPECT_NEAR(mean_of(norm), 1.0, 0.05);
  EXPECT_GT(std_of(norm), 0.05);
  EXPECT_LT(std_of(norm), 0.15);
}

TEST_F(ModelToolsTest, SynthQuantizedTypeFallsBackToF16ForShortRows) {
  SynthSpec spec;
  spec.n_embd = 256;
  spec.n_ff = 128;  // ffn_down rows are 128 long: not a whole Q4_K super-block
  spec.n_layers = 1;
  spec.type = DType::Q4_K;
  const auto file = synth(spec);
  EXPECT_EQ(file->get_int("general.file_type"), 15);
  EXPECT_EQ(file->find_tensor("blk.0.attn_q.weight")->type, DType::Q4_K);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_up.weight")->type, DType::Q4_K);
  EXPECT_EQ(file->find_tensor("token_embd.weight")->type, DType::Q4_K);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_down.weight")->type, DType::F16);
  EXPECT_EQ(file->find_tensor("blk.0.attn_norm.weight")->type, DType::F32);
}

TEST_F(ModelToolsTest, SynthLlama3RopeScalingWritesFrequencyFactors) {
  SynthSpec spec;  // head_dim 16, base 10000: wavelengths from 6.3 up to about 20000
  spec.llama3_rope_scaling = true;
  const auto file = synth(spec);
  const GgufTensorInfo* t = file->find_tensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, std::vector<int64_t>{8});
  EXPECT_EQ(t->type, DType::F32);
  const auto f = tensor_values(*file, "rope_freqs.weight");
  EXPECT_FLOAT_EQ(f.front(), 1.f);  // wavelength 2*pi: far below 8192/4, unscaled
  EXPECT_FLOAT_EQ(f.back(), 8.f);   // wavelength 2*pi*10000^(14/16) > 8192: scaled by 8
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
  EXPECT_EQ(file->get_string("llama.rope.scaling.type"), "llama3");
}

TEST_F(ModelToolsTest, SynthCopiesVocabularyFromGgufFile) {
  const std::string vocab = std::string(PARALLAX_SHARED_DIR) + "/vocab/ggml-vocab-llama-spm.gguf";
  if (!fs::exists(vocab)) GTEST_SKIP() << vocab << " not present";
  const auto source = GgufFile::open(vocab);
  SynthSpec spec;
  spec.vocab_path = vocab;
  spec.n_layers = 1;
  const auto file = synth(spec);
  const int64_t n = n_vocab_of(*source);
  EXPECT_EQ(n_vocab_of(*file), n);
  EXPECT_EQ(file->get_int("llama.vocab_size"), n);
  EXPECT_EQ(file->find_tensor("token_embd.weight")->dims, (std::vector<int64_t>{64, n}));
  for (const auto& kv : source->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    const GgufValue* copy = file->find(kv.key);
    ASSERT_NE(copy, nullptr) << kv.key;
    EXPECT_EQ(copy->type, kv.value.type) << kv.key;
    EXPECT_EQ(copy->array_strings, kv.value.array_strings) << kv.key;
    EXPECT_EQ(copy->array_ints, kv.value.array_ints) << kv.key;
    EXPECT_EQ(copy->array_floats, kv.value.array_floats) << kv.key;
    EXPECT_EQ(copy->string_value, kv.value.string_value) << kv.key;
    EXPECT_EQ(copy->uint_value, kv.value.uint_value) << kv.key;
  }
}

void expect_spec_error(const SynthSpec& spec, const std::string& fragment) {
  try {
    validate_synth_spec(spec);
    ADD_FAILURE() << "accepted a spec that should fail with '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST_F(ModelToolsTest, SynthRejectsInvalidSpecsWithClearMessages) {
  SynthSpec s;
  s.n_heads = 5;
  expect_spec_error(s, "embd 64 is not divisible by heads 5");
  s = {};
  s.n_kv_heads = 3;
  expect_spec_error(s, "heads 4 is not a multiple of kv heads 3");
  s = {};
  s.n_layers = 0;
  expect_spec_error(s, "layers must be at least 1 (got 0)");
  s = {};
  s.arch = "gpt-j";
  expect_spec_error(s, "unknown architecture 'gpt-j'");
  s = {};
  s.type = DType::Q4_K;
  expect_spec_error(s, "Q4_K needs embd to be a multiple of its block size 256 (got 64)");
  s = {};
  s.type = DType::Q5_K;
  expect_spec_error(s, "Q5_K cannot store weights");
  // write_synthetic_model validates too, and leaves no file behind.
  s = {};
  s.n_layers = 0;
  EXPECT_THROW(write_synthetic_model(s, path("bad.gguf")), Error);
  EXPECT_FALSE(fs::exists(path("bad.gguf")));
}

TEST(BuiltinVocab, ArraysAreConsistentAndMergesBuildKnownTokens) {
  const BuiltinVocab& v = builtin_vocab();
  ASSERT_EQ(v.tokens.size(), v.token_types.size());
  const std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(unique.size(), v.tokens.size());
  EXPECT_GT(v.merges.size(), 50u);  // the corpus yields common words, not just bytes
  for (const std::string& m : v.merges) {
    const size_t space = m.find(' ');
    ASSERT_NE(space, std::string::npos) << m;
    const std::string left = m.substr(0, space), right = m.substr(space + 1);
    EXPECT_TRUE(unique.count(left)) << m;
    EXPECT_TRUE(unique.count(right)) << m;
    EXPECT_TRUE(unique.count(left + right)) << m;
  }
  for (int32_t id : {v.bos_id, v.eos_id, v.eot_id}) {
    ASSERT_GE(id, 256);
    ASSERT_LT(id, static_cast<int32_t>(v.tokens.size()));
    EXPECT_EQ(v.token_types[id], kTokenTypeControl);
  }
  EXPECT_EQ(v.tokens[v.bos_id], "<|bos|>");
  EXPECT_EQ(v.tokens[v.eos_id], "<|eos|>");
  EXPECT_EQ(v.tokens[v.eot_id], "<|im_end|>");
  EXPECT_TRUE(unique.count("\xC4\xA0the"));  // " the" is the corpus's most common word
}

TEST(BuiltinVocab, ByteTokensFollowGpt2BytesToUnicode) {
  const BuiltinVocab& v = builtin_vocab();
  EXPECT_EQ(v.tokens['A'], "A");
  EXPECT_EQ(v.tokens[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(v.tokens['\n'], "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(v.tokens[0], "\xC4\x80");     // U+0100 'Ā'
  EXPECT_EQ(v.tokens[0xAD], "\xC5\x83");  // soft hyphen, the last remapped byte: U+0143
  EXPECT_EQ(v.tokens[0xFF], "\xC3\xBF");  // U+00FF stands for itself
}

TEST_F(ModelToolsTest, SynthBuiltinVocabularyKeysAreWritten) {
  const auto file = synth(SynthSpec{});
  const BuiltinVocab& v = builtin_vocab();
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file->get_string("tokenizer.ggml.pre"), "default");
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_strings, v.tokens);
  EXPECT_EQ(file->get("tokenizer.ggml.token_type").array_size(), v.tokens.size());
  EXPECT_EQ(file->get("tokenizer.ggml.merges").array_strings, v.merges);
  EXPECT_EQ(file->get_int("tokenizer.ggml.bos_token_id"), v.bos_id);
  EXPECT_EQ(file->get_int("tokenizer.ggml.eos_token_id"), v.eos_id);
  EXPECT_EQ(file->find_bool("tokenizer.ggml.add_bos_token"), std::optional<bool>(true));
  EXPECT_TRUE(file->find_string("tokenizer.chat_template").has_value());
}

TEST_F(ModelToolsTest, QuantizeToQ8_0KeepsValuesCloseAndOneDimensionalTensorsUntouched) {
  SynthSpec spec;
  spec.arch = "qwen2";
  write_synthetic_model(spec, path("f32.gguf"));
  quantize_model(path("f32.gguf"), path("q8.gguf"), DType::Q8_0);
  const auto in = GgufFile::open(path("f32.gguf"));
  const auto out = GgufFile::open(path("q8.gguf"));
  EXPECT_EQ(out->get_int("general.file_type"), 7);
  EXPECT_EQ(out->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(out->get("tokenizer.ggml.tokens").array_strings,
            in->get("tokenizer.ggml.tokens").array_strings);
  ASSERT_EQ(in->tensors().size(), out->tensors().size());
  for (size_t i = 0; i < in->tensors().size(); ++i) {
    const GgufTensorInfo& a = in->tensors()[i];
    const GgufTensorInfo& b = out->tensors()[i];
    EXPECT_EQ(a.name, b.name);  // order kept
    EXPECT_EQ(a.dims, b.dims) << a.name;
    if (a.dims.size() == 1) {
      EXPECT_EQ(b.type, DType::F32) << a.name;
      EXPECT_EQ(tensor_bytes(*in, a.name), tensor_bytes(*out, a.name)) << a.name;
      continue;
    }
    EXPECT_EQ(b.type, DType::Q8_0) << a.name;
    // Q8_0 rounds each value to a step of amax/127 of its 32-block: the error is at most half
    // a step, plus the fp16 rounding of the scale (relative 2^-11 of up to 127 steps).
    const auto original = tensor_values(*in, a.name);
    std::vector<float> restored(original.size());
    const size_t row = static_cast<size_t>(a.dims[0]);
    const uint8_t* q = out->tensor_data(b);
    for (size_t r = 0; r < original.size() / row; ++r) {
      dequantize_row(DType::Q8_0, q + r * row_bytes(DType::Q8_0, a.dims[0]),
                     restored.data() + r * row, a.dims[0]);
    }
    for (size_t blk = 0; blk < original.size(); blk += 32) {
      float amax = 0;
      for (size_t k = blk; k < blk + 32; ++k) amax = std::max(amax, std::abs(original[k]));
      const float tolerance = amax / 127.f * 0.5f + amax * 1e-3f + 1e-7f;
      for (size_t k = blk; k < blk + 32; ++k) {
        ASSERT_NEAR(restored[k], original[k], tolerance) << a.name << " element " << k;
      }
    }
  }
}

TEST_F(ModelToolsTest, QuantizeFallsBackToF16WhenRowsDoNotFillBlocks) {
  SynthSpec spec;
  spec.n_embd = 256;
  spec.n_ff = 128;
  spec.n_layers = 1;
  write_synthetic_model(spec, path("f32.gguf"));
  quantize_model(path("f32.gguf"), path("q6.gguf"), DType::Q6_K);
  const auto out = GgufFile::open(path("q6.gguf"));
  EXPECT_EQ(out->get_int("general.file_type"), 18);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_gate.weight")->type, DType::Q6_K);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_down.weight")->type, DType::F16);
  // F16 of N(0, 1/128) values: relative error below 2^-11.
  const auto in = GgufFile::open(path("f32.gguf"));
  const auto a = tensor_values(*in, "blk.0.ffn_down.weight");
  const auto b = tensor_values(*out, "blk.0.ffn_down.weight");
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], std::abs(a[i]) / 2048 + 1e-7f);
}

TEST_F(ModelToolsTest, QuantizeRejectsTypesThatCannotHoldWeights) {
  write_synthetic_model(SynthSpec{}, path("f32.gguf"));
  try {
    quantize_model(path("f32.gguf"), path("out.gguf"), DType::Q4_1);
    ADD_FAILURE() << "Q4_1 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("out.gguf")));
}

TEST_F(ModelToolsTest, DescribeModelReportsArchitectureShapeAndTensorTypes) {
  SynthSpec spec;
  spec.arch = "qwen2";
  spec.n_layers = 3;
  write_synthetic_model(spec, path("f32.gguf"));
  quantize_model(path("f32.gguf"), path("q8.gguf"), DType::Q8_0);
  const auto file = GgufFile::open(path("q8.gguf"));
  const int64_t vocab = n_vocab_of(*file);

  const std::string text = describe_model(*file);
  for (const char* fragment : {"qwen2", "Q8_0", "F32", "chat template", "gpt2"}) {
    EXPECT_NE(text.find(fragment), std::string::npos) << fragment << " missing from:\n" << text;
  }

  const nlohmann::json j = describe_model_json(*file);
  EXPECT_EQ(j["architecture"], "qwen2");
  EXPECT_EQ(j["layers"], 3);
  EXPECT_EQ(j["heads"], 4);
  EXPECT_EQ(j["kv_heads"], 2);
  EXPECT_EQ(j["head_dim"], 16);
  EXPECT_EQ(j["vocab"]["size"], vocab);
  EXPECT_EQ(j["vocab"]["chat_template"], true);
  // embedding + head, per layer: 2 norms, q, k, v, o, 3 ffn matrices, q/k/v biases; final norm.
  const int64_t per_layer = 2 * 64 + 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 64 + 2 * 32;
  EXPECT_EQ(j["parameters"], 2 * 64 * vocab + 3 * per_layer + 64);
  EXPECT_EQ(j["tensor_types"]["Q8_0"]["count"], 2 + 3 * 7);
  EXPECT_EQ(j["tensor_types"]["F32"]["count"], 1 + 3 * 5);
  EXPECT_EQ(j["file_size"], fs::file_size(path("q8.gguf")));
}

std::string run_command(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  *status = pclose(pipe);
  return output;
}

TEST_F(ModelToolsTest, CliSynthQuantizeAndInfoWorkTogether) {
  const std::string bin = PARALLAX_BINARY;
  int status = -1;
  run_command(bin + " model synth -o " + path("m.gguf") +
                  " --arch qwen3 --layers 1 --embd 64 --heads 4 --kv-heads 1 --ff 96 --seed 7"
                  " --type q8_0 --tied 2>&1",
              &status);
  ASSERT_EQ(status, 0);
  run_command(bin + " model quantize " + path("m.gguf") + " " + path("q4.gguf") +
                  " --type q4_0 2>&1",
              &status);
  ASSERT_EQ(status, 0);
  const std::string json = run_command(bin + " model info --json " + path("q4.gguf"), &status);
  ASSERT_EQ(status, 0);
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["architecture"], "qwen3");
  EXPECT_EQ(j["kv_heads"], 1);
  EXPECT_EQ(j["feed_forward_length"], 96);
  EXPECT_EQ(j["file_type"], 2);
  EXPECT_TRUE(j["tensor_types"].contains("Q4_0"));

  const std::string err =
      run_command(bin + " model synth -o " + path("bad.gguf") + " --heads 3 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(err.find("not divisible by heads 3"), std::string::npos) << err;
}

}  // namespace
}  // namespace px
