#pragma once
// Writes any model the engine can load (a GGUF file or a Hugging Face directory, through its
// WeightSource) as a GGUF file of a chosen weight type: `parallax model convert`.
#include <functional>
#include <string>

#include "core/dtype.h"

namespace px {

class GgufWriter;
class WeightSource;

// 2-D weights are stored as `type` (falling back to F16 for rows that do not fill its blocks),
// 1-D tensors as F32. Llama-family Q/K rows held in Hugging Face's half-split order are
// permuted to GGUF's interleaved order. `add_metadata` adds keys of its own (the tokenizer).
void write_gguf_model(const WeightSource& weights, const std::string& out_path, DType type,
                      const std::function<void(GgufWriter&)>& add_metadata = {});

}  // namespace px
