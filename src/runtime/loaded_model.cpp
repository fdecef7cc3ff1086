#include "runtime/loaded_model.h"

#include <filesystem>

#include "core/error.h"

namespace px {

LoadedModel LoadedModel::open(const std::string& path) {
  LoadedModel m;
  if (std::filesystem::is_directory(path)) {
    m.tokenizer = Tokenizer::from_hf(path);
    m.shard = ModelShard::load(path);
  } else {
    auto file = GgufFile::open(path);
    m.tokenizer = Tokenizer::from_gguf(*file);
    const int n_layers = ModelConfig::from_gguf(*file).n_layers;
    m.shard = std::make_shared<ModelShard>(std::move(file), LayerRange{0, n_layers});
  }
  if (m.tokenizer->n_vocab() > m.shard->config().n_vocab) {
    fail("{}: the tokenizer has {} tokens but the model only {}", path, m.tokenizer->n_vocab(),
         m.shard->config().n_vocab);
  }
  return m;
}

}  // namespace px
