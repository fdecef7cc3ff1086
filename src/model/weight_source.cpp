#include "model/weight_source.h"

#include <filesystem>

#include "core/error.h"
#include "model/gguf.h"
#include "model/hf_config.h"
#include "model/hf_tensor_map.h"
#include "model/safetensors.h"

namespace px {
namespace {

class GgufWeights : public WeightSource {
 public:
  explicit GgufWeights(std::shared_ptr<const GgufFile> file)
      : file_(std::move(file)), config_(ModelConfig::from_gguf(*file_)) {}
  const std::string& name() const override { return file_->name(); }
  const ModelConfig& config() const override { return config_; }
  std::optional<TensorRef> find(const std::string& gguf_name) const override {
    const GgufTensorInfo* t = file_->find_tensor(gguf_name);
    if (!t) return std::nullopt;
    return TensorRef{file_->tensor_data(*t), t->type, t->dims};
  }

 private:
  std::shared_ptr<const GgufFile> file_;
  ModelConfig config_;
};

// HF names and shapes translated to GGUF's. Q/K rows stay in HF's half-split order, which is
// why HfConfig gives every architecture NEOX-style RoPE; llama3 rope factors come from the
// config as a synthesized rope_freqs.weight.
class HfWeights : public WeightSource {
 public:
  explicit HfWeights(const std::string& directory)
      : name_(directory),
        hf_config_(HfConfig::load(directory)),
        config_(hf_config_.to_model_config()),
        model_(SafetensorsModel::open(directory)),
        rope_factors_(hf_config_.rope_freq_factors()) {}
  const std::string& name() const override { return name_; }
  const ModelConfig& config() const override { return config_; }
  std::optional<TensorRef> find(const std::string& gguf_name) const override {
    if (gguf_name == "rope_freqs.weight") {
      if (rope_factors_.empty()) return std::nullopt;
      return TensorRef{reinterpret_cast<const uint8_t*>(rope_factors_.data()), DType::F32,
                       {int64_t(rope_factors_.size())}};
    }
    const std::optional<std::string> hf_name = gguf_to_hf_tensor_name(gguf_name);
    if (!hf_name) return std::nullopt;
    const SafetensorsTensorRef ref = model_->find(*hf_name);
    if (!ref) return std::nullopt;
    return TensorRef{ref.data().data(), ref.file->compute_type(*ref.tensor), ref.tensor->ggml_dims()};
  }

 private:
  std::string name_;
  HfConfig hf_config_;
  ModelConfig config_;
  std::shared_ptr<SafetensorsModel> model_;
  std::vector<float> rope_factors_;
};

}  // namespace

int64_t TensorRef::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::shared_ptr<const WeightSource> gguf_weights(std::shared_ptr<const GgufFile> file) {
  return std::make_shared<GgufWeights>(std::move(file));
}

std::shared_ptr<const WeightSource> hf_weights(const std::string& directory) {
  return std::make_shared<HfWeights>(directory);
}

std::shared_ptr<const WeightSource> open_weights(const std::string& path) {
  if (std::filesystem::is_directory(path)) return hf_weights(path);
  return gguf_weights(GgufFile::open(path));
}

}  // namespace px
