#pragma once
// `parallax model info`: what a GGUF model file holds, for people (text) and scripts (JSON).
#include <nlohmann/json.hpp>

#include <string>

#include "model/gguf.h"

namespace px {

// Architecture, name, hyperparameters, vocabulary (size, tokenizer model/pre, chat template
// present), total parameters, file size, and tensor counts and bytes per type. Values a file
// lacks are reported as missing, so a vocab-only file can be described too.
nlohmann::json describe_model_json(const GgufFile& file);

// The same as a readable multi-line report.
std::string describe_model(const GgufFile& file);

}  // namespace px
