#pragma once
// Where a model's weights come from: a GGUF file or a Hugging Face directory (config.json +
// safetensors). Both answer in GGUF's terms — tensor names (blk.N.attn_q.weight, ...), GGML
// dimension order, ModelConfig — so ModelShard and everything above it has one code path.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/model_config.h"

namespace px {

class GgufFile;

struct TensorRef {
  const uint8_t* data = nullptr;  // stays valid as long as the source lives
  DType type = DType::F32;
  std::vector<int64_t> dims;      // GGML order: dims[0] is the row length
  int64_t elements() const;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const std::string& name() const = 0;  // for error messages
  virtual const ModelConfig& config() const = 0;
  // The tensor with this GGUF name, or nullopt when the model has none.
  virtual std::optional<TensorRef> find(const std::string& gguf_name) const = 0;
};

std::shared_ptr<const WeightSource> gguf_weights(std::shared_ptr<const GgufFile> file);
// A directory with config.json and model.safetensors (or a sharded index).
std::shared_ptr<const WeightSource> hf_weights(const std::string& directory);
// A GGUF file or a Hugging Face directory.
std::shared_ptr<const WeightSource> open_weights(const std::string& path);

}  // namespace px
