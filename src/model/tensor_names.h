#pragma once
// The GGUF tensor names the loader (ModelShard) may read for a model, so that tools that walk
// "every tensor of the model" (conversion, the model digest) see exactly what inference uses,
// whatever the weight source. Tensors a file holds beyond these are never read.
#include <string>
#include <vector>

namespace px {

struct ModelConfig;

// The names of transformer layer `layer` (blk.N.*), in GGUF's usual order. Optional tensors
// (biases, q/k norms) are listed too: a source simply lacks them.
std::vector<std::string> layer_tensor_names(int layer);
// Everything outside the layers: the token embedding and RoPE factors, then the output norm
// and head.
std::vector<std::string> embedding_output_tensor_names();
// All of them in file order: embedding, rope factors, the layers, the output side.
std::vector<std::string> model_tensor_names(const ModelConfig& config);

}  // namespace px
