#pragma once
// A model opened for serving on this node: the file, its tokenizer and the shard of all its
// layers (a one-stage pipeline), checked to fit together.
#include <memory>
#include <string>

#include "model/gguf.h"
#include "model/model_shard.h"
#include "tokenizer/tokenizer.h"

namespace px {

struct LoadedModel {
  std::shared_ptr<GgufFile> file;
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<ModelShard> shard;

  // Throws px::Error naming the file for anything unreadable, unsupported or inconsistent.
  static LoadedModel open(const std::string& path);
};

}  // namespace px
