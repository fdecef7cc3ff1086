#pragma once
// A model opened for serving on this node — a GGUF file, or a Hugging Face directory
// (config.json, safetensors, tokenizer.json) — as its tokenizer and the shard of all its layers
// (a one-stage pipeline), checked to fit together.
#include <memory>
#include <string>

#include "model/gguf.h"
#include "model/model_shard.h"
#include "tokenizer/tokenizer.h"

namespace px {

struct LoadedModel {
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<ModelShard> shard;

  // Throws px::Error naming the file for anything unreadable, unsupported or inconsistent.
  static LoadedModel open(const std::string& path);
};

}  // namespace px
