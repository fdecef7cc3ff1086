#pragma once
// Writes a GGUF model as a Hugging Face directory: config.json and model.safetensors (or
// several shards with model.safetensors.index.json), with HF tensor names, row-major shapes
// and, for the llama family, Q/K rows in HF's half-split order. Weights are written as F32,
// F16 or BF16 (safetensors has no block-quantized types). Used by `model synth --format hf`
// and by the tests that hold the two formats to the same results.
#include <string>

#include "core/dtype.h"

namespace px {

class GgufFile;

void write_hf_model(const GgufFile& gguf, const std::string& directory, DType type = DType::F32, int shards = 1);

}  // namespace px
