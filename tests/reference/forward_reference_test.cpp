// The real forward pass against the double-precision reference, on synthetic models of every
// architecture and weight type; and the shard contract: two layer ranges back to back equal
// the whole model bit for bit.
#include <gtest/gtest.h>

#include "unit/test_temp_dir.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "reference/reference_model.h"
#include "runtime/generate.h"

namespace px {
namespace {

struct Case {
  std::string arch;
  DType type;
  double tolerance;  // max |logit - exact reference| relative to max |reference logit|
  bool tied = false;
  bool llama3_rope = false;
};

std::string case_label(const Case& c) {
  return c.arch + "_" + std::string(dtype_name(c.type)) + (c.tied ? "_tied" : "") +
         (c.llama3_rope ? "_llama3rope" : "");
}
std::string case_name(const ::testing::TestParamInfo<Case>& info) { return case_label(info.param); }
void PrintTo(const Case& c, std::ostream* os) { *os << case_label(c); }

SynthSpec spec_for(const Case& c) {
  SynthSpec s;
  s.arch = c.arch;
  s.type = c.type;
  s.seed = 7;
  s.n_layers = 2;
  // K-quants need rows that are multiples of 256.
  const bool k_quant = c.type == DType::Q4_K || c.type == DType::Q6_K;
  s.n_embd = k_quant ? 256 : 64;
  s.n_ff = k_quant ? 512 : 160;
  s.n_heads = 4;
  s.n_kv_heads = 2;
  s.n_ctx = 256;
  s.tied_embeddings = c.tied;
  s.llama3_rope_scaling = c.llama3_rope;
  return s;
}

std::string synth(const Case& c) {
  const std::string path = px::test::temp_dir() + "ref_" + case_label(c) + ".gguf";
  write_synthetic_model(spec_for(c), path);
  return path;
}

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 5, 230, 64, 128};

double relative_error(std::span<const float> got, const std::vector<double>& want) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(got[i]) - want[i]));
    max_ref = std::max(max_ref, std::abs(want[i]));
  }
  return max_diff / max_ref;
}

class ForwardReference : public ::testing::TestWithParam<Case> {};

// Logits of every prompt position against the reference; returns the worst relative error.
double worst_prompt_error(const std::string& path, testing::ActivationRounding rounding) {
  testing::ReferenceModel reference(path, rounding);
  auto shard = ModelShard::load(path);
  ThreadPool pool(2);
  KvCache cache(shard->config(), shard->range(), 256);
  ForwardPass pass(shard, cache, pool);

  ForwardBatch batch;
  batch.add_tokens(0, kPrompt, 0, /*all_logits=*/true);
  ForwardResult result;
  pass.run(batch, result);
  EXPECT_EQ(result.rows, int(kPrompt.size()));
  EXPECT_EQ(result.width, reference.n_vocab());
  double worst = 0;
  for (size_t i = 0; i < kPrompt.size() && int(i) < result.rows; ++i) {
    worst = std::max(worst, relative_error(result.row(int(i)), reference.step(kPrompt[i])));
  }
  return worst;
}

// Against exact arithmetic: the error of the weight type plus the int8 rounding of activations.
TEST_P(ForwardReference, LogitsMatchDoublePrecisionReference) {
  const double worst = worst_prompt_error(synth(GetParam()), testing::ActivationRounding::Exact);
  EXPECT_LT(worst, GetParam().tolerance) << "worst relative logit error over the prompt";
  RecordProperty("relative_error", fmt::format("{:.3g}", worst));
}

// Against the same algorithm in double (activations rounded to int8 blocks like the integer
// kernels): only float rounding remains, for every weight type.
TEST_P(ForwardReference, LogitsMatchReferenceWithTheSameActivationRounding) {
  const double worst = worst_prompt_error(synth(GetParam()), testing::ActivationRounding::Int8Blocks);
  EXPECT_LT(worst, 1e-5) << "worst relative logit error over the prompt";
  RecordProperty("relative_error", fmt::format("{:.3g}", worst));
}

TEST_P(ForwardReference, GreedyTokensMatchReferenceFor32Steps) {
  const Case& c = GetParam();
  const std::string path = synth(c);
  testing::ReferenceModel reference(path, testing::ActivationRounding::Int8Blocks);
  const std::vector<int32_t> want = reference.greedy(kPrompt, 32);

  auto shard = ModelShard::load(path);
  ThreadPool pool(2);
  KvCache cache(shard->config(), shard->range(), 256);
  ForwardPass pass(shard, cache, pool);
  GenerateOptions options;
  options.max_tokens = 32;
  options.sampling.temperature = 0;
  const std::vector<int32_t> got = generate(pass, cache, 0, kPrompt, options);
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(
    AllArchitecturesAndTypes, ForwardReference,
    ::testing::Values(Case{"llama", DType::F32, 1e-5}, Case{"llama", DType::F16, 1e-5},
                      Case{"llama", DType::BF16, 1e-5}, Case{"llama", DType::Q8_0, 5e-2},
                      Case{"llama", DType::Q4_0, 5e-2}, Case{"llama", DType::Q4_K, 5e-2},
                      Case{"llama", DType::Q6_K, 5e-2}, Case{"qwen2", DType::F32, 1e-5},
                      Case{"qwen2", DType::F16, 1e-5}, Case{"qwen2", DType::Q8_0, 5e-2},
                      Case{"qwen2", DType::Q4_0, 5e-2}, Case{"qwen3", DType::F32, 1e-5},
                      Case{"qwen3", DType::F16, 1e-5}, Case{"qwen3", DType::Q8_0, 5e-2},
                      Case{"qwen3", DType::Q4_0, 5e-2}, Case{"qwen3", DType::Q4_K, 5e-2},
                      Case{"qwen2", DType::Q6_K, 5e-2}, Case{"llama", DType::F32, 1e-5, /*tied=*/true},
                      Case{"llama", DType::F32, 1e-5, false, /*llama3_rope=*/true}),
    case_name);

// Runs kPrompt through the given shards back to back, returning the last shard's logits.
std::vector<float> run_pipeline(const std::vector<std::shared_ptr<ModelShard>>& shards, ThreadPool& pool) {
  ForwardBatch batch;
  batch.add_tokens(0, kPrompt, 0, /*all_logits=*/true);
  ForwardResult result;
  std::vector<std::unique_ptr<KvCache>> caches;
  for (const auto& shard : shards) {
    caches.push_back(std::make_unique<KvCache>(shard->config(), shard->range(), 256));
    ForwardPass pass(shard, *caches.back(), pool);
    pass.run(batch, result);
    batch.hidden = result.values;  // the next stage's input
  }
  return result.values;
}

TEST(ForwardShards, TwoLayerRangesEqualWholeModelBitForBit) {
  for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
    SynthSpec spec;
    spec.arch = arch;
    spec.n_layers = 4;
    spec.type = DType::Q8_0;
    const std::string path = px::test::temp_dir() + "split_" + arch + ".gguf";
    write_synthetic_model(spec, path);
    auto file = GgufFile::open(path);
    ThreadPool pool(2);
    const std::vector<float> whole = run_pipeline({std::make_shared<ModelShard>(file, LayerRange{0, 4})}, pool);
    for (int cut = 1; cut < 4; ++cut) {
      const std::vector<float> split = run_pipeline(
          {std::make_shared<ModelShard>(file, LayerRange{0, cut}), std::make_shared<ModelShard>(file, LayerRange{cut, 4})},
          pool);
      EXPECT_EQ(split, whole) << arch << " cut at layer " << cut;
    }
    const std::vector<float> three = run_pipeline({std::make_shared<ModelShard>(file, LayerRange{0, 1}),
                                                   std::make_shared<ModelShard>(file, LayerRange{1, 3}),
                                                   std::make_shared<ModelShard>(file, LayerRange{3, 4})},
                                                  pool);
    EXPECT_EQ(three, whole) << arch << " in three stages";
  }
}

TEST(ForwardShards, ShardLoadsOnlyItsOwnEnds) {
  SynthSpec spec;
  spec.n_layers = 4;
  const std::string path = px::test::temp_dir() + "ends.gguf";
  write_synthetic_model(spec, path);
  auto file = GgufFile::open(path);
  ModelShard middle(file, LayerRange{1, 3});
  EXPECT_FALSE(middle.is_first());
  EXPECT_FALSE(middle.is_last());
  EXPECT_EQ(middle.token_embedding().data, nullptr);
  EXPECT_EQ(middle.output().data, nullptr);
  EXPECT_THROW(ModelShard(file, LayerRange{2, 5}), Error);
  EXPECT_THROW(ModelShard(file, LayerRange{3, 3}), Error);
}

TEST(ForwardShards, Llama3RopeFactorsDivideTheFrequencies) {
  SynthSpec spec;
  spec.llama3_rope_scaling = true;
  spec.n_embd = 256;
  spec.n_heads = 2;  // head_dim 128, as in Llama 3
  spec.n_kv_heads = 1;
  const std::string path = px::test::temp_dir() + "llama3_rope.gguf";
  write_synthetic_model(spec, path);
  auto shard = ModelShard::load(path);
  const std::vector<float> factors = llama3_rope_factors(128, spec.rope_base);
  ASSERT_EQ(shard->rope_freqs().size(), 64u);
  bool any_scaled = false;
  for (int i = 0; i < 64; ++i) {
    const double plain = std::pow(double(spec.rope_base), -2.0 * i / 128);
    EXPECT_NEAR(shard->rope_freqs()[i], plain / factors[i], 1e-6 * plain) << "pair " << i;
    any_scaled |= factors[i] != 1.0f;
  }
  EXPECT_TRUE(any_scaled);
}

TEST(ForwardBatching, SequencesInOneBatchEqualEachAlone) {
  SynthSpec spec;
  spec.type = DType::Q4_0;
  const std::string path = px::test::temp_dir() + "batching.gguf";
  write_synthetic_model(spec, path);
  auto shard = ModelShard::load(path);
  ThreadPool pool(2);
  const std::vector<int32_t> a = {3, 9, 27, 81}, b = {100, 7};

  auto alone = [&](const std::vector<int32_t>& tokens) {
    KvCache cache(shard->config(), shard->range(), 64);
    ForwardPass pass(shard, cache, pool);
    ForwardBatch batch;
    batch.add_tokens(0, tokens, 0);
    ForwardResult r;
    pass.run(batch, r);
    return std::vector<float>(r.row(0).begin(), r.row(0).end());
  };
  KvCache cache(shard->config(), shard->range(), 64);
  ForwardPass pass(shard, cache, pool);
  ForwardBatch batch;
  batch.add_tokens(5, a, 0);
  batch.add_tokens(6, b, 0);
  ForwardResult r;
  pass.run(batch, r);
  ASSERT_EQ(r.rows, 2);
  EXPECT_EQ(std::vector<float>(r.row(0).begin(), r.row(0).end()), alone(a));
  EXPECT_EQ(std::vector<float>(r.row(1).begin(), r.row(1).end()), alone(b));
}

TEST(ForwardValidation, RejectsBadBatchesWithoutTouchingTheCache) {
  SynthSpec spec;
  const std::string path = px::test::temp_dir() + "validation.gguf";
  write_synthetic_model(spec, path);
  auto shard = ModelShard::load(path);
  ThreadPool pool(1);
  KvCache cache(shard->config(), shard->range(), 16);
  ForwardPass pass(shard, cache, pool);
  ForwardResult r;
  ForwardBatch batch;
  EXPECT_THROW(pass.run(batch, r), Error);  // empty
  batch.add_tokens(0, std::vector<int32_t>{shard->config().n_vocab}, 0);
  EXPECT_THROW(pass.run(batch, r), Error);  // token out of vocabulary
  batch.clear();
  batch.add_tokens(0, std::vector<int32_t>{1, 2}, 3);
  EXPECT_THROW(pass.run(batch, r), Error);  // gap after an empty cache
  batch.clear();
  batch.add_tokens(0, std::vector<int32_t>(17, 1), 0);
  EXPECT_THROW(pass.run(batch, r), Error);  // beyond the context
  EXPECT_EQ(cache.length(0), 0);
}

}  // namespace
}  // namespace px
