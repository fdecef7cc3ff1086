// A Hugging Face directory (config.json + safetensors) runs through the same model code as a
// GGUF file: the same synthetic weights give the same logits either way.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/hf_export.h"
#include "model/model_convert.h"
#include "model/weight_source.h"
#include "model/synth.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

void write_hf_copy(const std::string& gguf_path, const std::string& dir, const SynthSpec&, int shards = 1) {
  write_hf_model(*GgufFile::open(gguf_path), dir, DType::F32, shards);
}

std::vector<float> prompt_logits(const std::shared_ptr<ModelShard>& shard) {
  ThreadPool pool(1);
  KvCache cache(shard->config(), shard->range(), 64);
  ForwardPass pass(shard, cache, pool);
  ForwardBatch batch;
  batch.add_tokens(0, std::vector<int32_t>{1, 7, 42, 99, 3}, 0, /*all_logits=*/true);
  ForwardResult result;
  pass.run(batch, result);
  return result.values;
}

TEST(HfModel, SafetensorsDirectoryGivesTheSameLogitsAsGguf) {
  for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
    SynthSpec spec;
    spec.arch = arch;
    spec.n_layers = 2;
    spec.seed = 21;
    const std::string gguf = test::temp_dir() + "hf_" + arch + ".gguf";
    const std::string dir = test::temp_dir() + "hf_" + arch;
    write_synthetic_model(spec, gguf);
    write_hf_copy(gguf, dir, spec);
    const std::vector<float> want = prompt_logits(ModelShard::load(gguf));
    const std::vector<float> got = prompt_logits(ModelShard::load(dir));
    ASSERT_EQ(got.size(), want.size()) << arch;
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      max_diff = std::max(max_diff, double(std::abs(got[i] - want[i])));
      max_ref = std::max(max_ref, double(std::abs(want[i])));
    }
    EXPECT_LT(max_diff / max_ref, 1e-5) << arch;
  }
}

TEST(HfModel, ShardedDirectoryLoadsLikeASingleFile) {
  SynthSpec spec;
  spec.arch = "qwen2";
  spec.llama3_rope_scaling = false;
  const std::string gguf = test::temp_dir() + "sharded.gguf";
  write_synthetic_model(spec, gguf);
  write_hf_copy(gguf, test::temp_dir() + "single", spec, 1);
  write_hf_copy(gguf, test::temp_dir() + "sharded", spec, 3);
  EXPECT_TRUE(std::filesystem::exists(test::temp_dir() + "sharded/model.safetensors.index.json"));
  EXPECT_TRUE(std::filesystem::exists(test::temp_dir() + "sharded/model-00003-of-00003.safetensors"));
  EXPECT_EQ(prompt_logits(ModelShard::load(test::temp_dir() + "sharded")),
            prompt_logits(ModelShard::load(test::temp_dir() + "single")));
}

TEST(HfModel, Llama3RopeScalingSurvivesTheRoundTrip) {
  SynthSpec spec;
  spec.n_embd = 256;
  spec.n_heads = 2;
  spec.n_kv_heads = 1;
  spec.llama3_rope_scaling = true;
  const std::string gguf = test::temp_dir() + "llama3.gguf";
  const std::string dir = test::temp_dir() + "llama3";
  write_synthetic_model(spec, gguf);
  write_hf_copy(gguf, dir, spec);
  const std::vector<float> want = prompt_logits(ModelShard::load(gguf));
  const std::vector<float> got = prompt_logits(ModelShard::load(dir));
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(got[i] - want[i])));
    max_ref = std::max(max_ref, double(std::abs(want[i])));
  }
  EXPECT_LT(max_diff / max_ref, 1e-5);
}

TEST(HfModel, ConvertingADirectoryToGgufGivesBackTheSameModel) {
  for (const std::string arch : {"llama", "qwen3"}) {
    SynthSpec spec;
    spec.arch = arch;
    spec.seed = 33;
    const std::string gguf = test::temp_dir() + "conv_" + arch + ".gguf";
    const std::string dir = test::temp_dir() + "conv_" + arch;
    const std::string back = test::temp_dir() + "conv_" + arch + "_back.gguf";
    write_synthetic_model(spec, gguf);
    write_hf_copy(gguf, dir, spec);
    write_gguf_model(*hf_weights(dir), back, DType::F32);
    // F32 all the way and Q/K rows permuted back: the very same logits.
    EXPECT_EQ(prompt_logits(ModelShard::load(back)), prompt_logits(ModelShard::load(gguf))) << arch;
    const std::string q8 = test::temp_dir() + "conv_" + arch + "_q8.gguf";
    write_gguf_model(*hf_weights(dir), q8, DType::Q8_0);
    const auto file = GgufFile::open(q8);
    EXPECT_EQ(file->find_tensor("blk.0.attn_q.weight")->type, DType::Q8_0);
    EXPECT_EQ(file->find_tensor("blk.0.attn_norm.weight")->type, DType::F32);
    EXPECT_EQ(prompt_logits(ModelShard::load(q8)).size(), prompt_logits(ModelShard::load(gguf)).size());
  }
}

TEST(HfModel, ShardOfADirectoryLoadsItsRange) {
  SynthSpec spec;
  spec.n_layers = 4;
  const std::string gguf = test::temp_dir() + "hf_range.gguf";
  const std::string dir = test::temp_dir() + "hf_range";
  write_synthetic_model(spec, gguf);
  write_hf_copy(gguf, dir, spec);
  const auto middle = ModelShard::load(dir, LayerRange{1, 3});
  EXPECT_FALSE(middle->is_first());
  EXPECT_FALSE(middle->is_last());
  EXPECT_THROW(ModelShard::load(dir, LayerRange{2, 6}), Error);
  std::filesystem::remove(dir + "/config.json");
  EXPECT_THROW(ModelShard::load(dir), Error);
}

}  // namespace
}  // namespace px
