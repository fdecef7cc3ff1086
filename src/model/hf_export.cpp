#include "model/hf_export.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "core/file_write.h"
#include "kernels/cpu/quant.h"
#include "model/gguf.h"
#include "model/hf_tensor_map.h"
#include "model/model_config.h"
#include "model/safetensors_writer.h"

namespace px {
namespace {

const char* architecture_class(Arch arch) {
  switch (arch) {
    case Arch::Llama: return "LlamaForCausalLM";
    case Arch::Qwen2: return "Qwen2ForCausalLM";
    case Arch::Qwen3: return "Qwen3ForCausalLM";
  }
  return "";
}

}  // namespace

void write_hf_model(const GgufFile& gguf, const std::string& directory, DType type, int shards) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16) {
    fail("Hugging Face directories hold F32, F16 or BF16 weights, not {}", dtype_name(type));
  }
  if (shards < 1 || shards > 64) fail("shard count {} out of range (1..64)", shards);
  const ModelConfig c = ModelConfig::from_gguf(gguf);
  const GgufTensorInfo* embedding = gguf.find_tensor("token_embd.weight");
  if (!embedding) fail("{}: no token_embd.weight", gguf.name());
  std::filesystem::create_directories(directory);

  // Tensors in file order, spread over the shards by cumulative size.
  std::vector<const GgufTensorInfo*> tensors;
  uint64_t total = 0;
  for (const GgufTensorInfo& t : gguf.tensors()) {
    if (!gguf_to_hf_tensor_name(t.name)) continue;  // rope_freqs: HF derives it from config.json
    tensors.push_back(&t);
    total += uint64_t(t.n_elements) * (type == DType::F32 ? 4 : 2);
  }
  std::vector<SafetensorsWriter> writers(shards);
  std::map<std::string, std::string> weight_map;
  auto shard_name = [&](int i) {
    return shards == 1 ? std::string("model.safetensors")
                       : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards);
  };
  uint64_t written = 0;
  for (const GgufTensorInfo* t : tensors) {
    const int shard = std::min<int>(shards - 1, int(written * shards / std::max<uint64_t>(total, 1)));
    const int64_t cols = t->dims[0], rows = t->n_elements / cols;
    std::vector<float> values(t->n_elements);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t->type, gguf.tensor_data(*t) + size_t(r) * row_bytes(t->type, cols), values.data() + r * cols,
                     cols);
    }
    const bool qk = t->name.ends_with("attn_q.weight") || t->name.ends_with("attn_k.weight");
    if (c.arch == Arch::Llama && qk) {  // GGUF's interleaved rotary pairs back to HF's halves
      std::vector<float> hf(values.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(hf.data() + gguf_to_hf_qk_row(r, c.head_dim) * cols, values.data() + r * cols,
                    size_t(cols) * sizeof(float));
      }
      values.swap(hf);
    }
    std::vector<uint8_t> bytes(row_bytes(type, cols) * size_t(rows));
    for (int64_t r = 0; r < rows; ++r) {
      quantize_row(type, values.data() + r * cols, bytes.data() + size_t(r) * row_bytes(type, cols), cols);
    }
    written += bytes.size();
    const std::string name = *gguf_to_hf_tensor_name(t->name);
    weight_map[name] = shard_name(shard);
    writers[shard].add_tensor(name, type, {t->dims.rbegin(), t->dims.rend()}, std::move(bytes));
  }
  for (int i = 0; i < shards; ++i) writers[i].write(directory + "/" + shard_name(i));
  if (shards > 1) write_safetensors_index(directory + "/model.safetensors.index.json", weight_map, written);

  nlohmann::json config = {
      {"architectures", {architecture_class(c.arch)}},
      {"model_type", c.arch_name},
      {"hidden_size", c.n_embd},
      {"intermediate_size", c.n_ff},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"rms_norm_eps", c.rms_eps},
      {"rope_theta", c.rope_base},
      {"max_position_embeddings", c.n_ctx_train},
      {"vocab_size", embedding->dims[1]},
      {"tie_word_embeddings", gguf.find_tensor("output.weight") == nullptr},
      {"torch_dtype", type == DType::F32 ? "float32" : type == DType::F16 ? "float16" : "bfloat16"}};
  if (gguf.find_tensor("rope_freqs.weight")) {
    // Llama 3 rope scaling: HF recomputes the per-frequency factors from these parameters.
    const std::string a = c.arch_name + ".";
    if (gguf.find_string(a + "rope.scaling.type") != std::optional<std::string>("llama3")) {
      fail("{}: rope_freqs.weight without llama3 rope scaling metadata cannot be written to config.json", gguf.name());
    }
    config["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", gguf.find_float(a + "rope.scaling.factor").value_or(8.0)},
                              {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings",
                               gguf.find_int(a + "rope.scaling.original_context_length").value_or(8192)}};
  }
  const std::string text = config.dump(2) + "\n";
  write_file_atomically(directory + "/config.json", [&](const WriteBytes& put) { put(text.data(), text.size()); });
}

}  // namespace px
