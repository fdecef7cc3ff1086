#include "model/model_convert.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cpu/quant.h"
#include "model/gguf_writer.h"
#include "model/hf_tensor_map.h"
#include "model/model_quantize.h"
#include "model/tensor_names.h"
#include "model/weight_source.h"

namespace px {

void write_gguf_model(const WeightSource& weights, const std::string& out_path, DType type,
                      const std::function<void(GgufWriter&)>& add_metadata) {
  ModelConfig config = weights.config();
  const auto embedding = weights.find("token_embd.weight");
  if (!embedding || embedding->dims.size() != 2) fail("{}: no token embedding to convert", weights.name());
  config.n_vocab = static_cast<int>(embedding->dims[1]);
  // GGUF's llama layout pairs rotary dimensions (2i, 2i+1); a source in the half-split order
  // (NEOX, as Hugging Face stores Llama) has its Q/K rows permuted on the way.
  const bool permute_qk = config.arch == Arch::Llama && config.rope_style == RopeStyle::Neox;
  if (config.arch == Arch::Llama) config.rope_style = RopeStyle::Norm;

  GgufWriter writer;
  write_hparams(writer, config, weights.name(), type);
  if (add_metadata) add_metadata(writer);

  for (const std::string& name : model_tensor_names(config)) {
    const std::optional<TensorRef> t = weights.find(name);
    if (!t) continue;
    const int64_t cols = t->dims[0], n = t->elements(), rows = n / cols;
    std::vector<float> values(n);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t->type, t->data + size_t(r) * row_bytes(t->type, cols), values.data() + r * cols, cols);
    }
    const bool qk = name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight") ||
                    name.ends_with("attn_q.bias") || name.ends_with("attn_k.bias");
    if (permute_qk && qk) {
      const int64_t row_len = t->dims.size() == 1 ? 1 : cols;
      const int64_t n_rows = t->dims.size() == 1 ? n : rows;
      std::vector<float> permuted(n);
      for (int64_t r = 0; r < n_rows; ++r) {
        std::memcpy(permuted.data() + hf_to_gguf_qk_row(r, config.head_dim) * row_len, values.data() + r * row_len,
                    size_t(row_len) * sizeof(float));
      }
      values.swap(permuted);
    }
    const DType stored = t->dims.size() == 1 ? DType::F32 : storage_type_for_row(type, cols);
    writer.add_tensor(name, t->dims, stored, encode_rows(stored, values, t->dims.size() == 1 ? n : cols));
  }
  writer.write(out_path);
}

}  // namespace px
