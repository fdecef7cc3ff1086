#include "runtime/loaded_model.h"

#include "core/error.h"

namespace px {

LoadedModel LoadedModel::open(const std::string& path) {
  LoadedModel m;
  m.file = GgufFile::open(path);
  m.tokenizer = Tokenizer::from_gguf(*m.file);
  m.shard = std::make_shared<ModelShard>(m.file, LayerRange{0, ModelConfig::from_gguf(*m.file).n_layers});
  if (m.tokenizer->n_vocab() > m.shard->config().n_vocab) {
    fail("{}: the tokenizer has {} tokens but the model only {}", m.file->name(), m.tokenizer->n_vocab(),
         m.shard->config().n_vocab);
  }
  return m;
}

}  // namespace px
