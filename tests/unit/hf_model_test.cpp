// A Hugging Face directory (config.json + safetensors) runs through the same model code as a
// GGUF file: the same synthetic weights give the same logits either way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/hf_tensor_map.h"
#include "model/model_convert.h"
#include "model/weight_source.h"
#include "model/safetensors_writer.h"
#include "model/synth.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

// Rewrites a (F32) GGUF model as an HF directory: HF names, row-major shapes, and for llama the
// Q/K rows back in HF's half-split order.
void write_hf_copy(const std::string& gguf_path, const std::string& dir, const SynthSpec& spec) {
  std::filesystem::create_directories(dir);
  const auto file = GgufFile::open(gguf_path);
  const ModelConfig c = ModelConfig::from_gguf(*file);
  SafetensorsWriter writer;
  for (const GgufTensorInfo& t : file->tensors()) {
    const auto hf_name = gguf_to_hf_tensor_name(t.name);
    if (!hf_name) continue;  // rope_freqs: HF keeps those in config.json
    std::vector<uint8_t> bytes(file->tensor_data(t), file->tensor_data(t) + t.n_bytes);
    const bool qk = t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight");
    if (spec.arch == "llama" && qk) {
      const size_t row = size_t(t.dims[0]) * sizeof(float);
      std::vector<uint8_t> hf(bytes.size());
      for (int64_t r = 0; r < t.dims[1]; ++r) {
        std::memcpy(hf.data() + size_t(gguf_to_hf_qk_row(r, c.head_dim)) * row, bytes.data() + size_t(r) * row, row);
      }
      bytes.swap(hf);
    }
    writer.add_tensor(*hf_name, t.type, {t.dims.rbegin(), t.dims.rend()}, std::move(bytes));
  }
  writer.write(dir + "/model.safetensors");
  const std::string arch_class =
      spec.arch == "llama" ? "LlamaForCausalLM" : spec.arch == "qwen2" ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM";
  nlohmann::json config = {{"architectures", {arch_class}},
                           {"model_type", spec.arch},
                           {"hidden_size", c.n_embd},
                           {"intermediate_size", c.n_ff},
                           {"num_hidden_layers", c.n_layers},
                           {"num_attention_heads", c.n_heads},
                           {"num_key_value_heads", c.n_kv_heads},
                           {"head_dim", c.head_dim},
                           {"rms_norm_eps", c.rms_eps},
                           {"rope_theta", c.rope_base},
                           {"max_position_embeddings", c.n_ctx_train},
                           {"vocab_size", file->find_tensor("token_embd.weight")->dims[1]},
                           {"tie_word_embeddings", spec.tied_embeddings},
                           {"torch_dtype", "float32"}};
  std::ofstream(dir + "/config.json") << config.dump(2);
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
