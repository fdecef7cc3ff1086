#include "model/tensor_names.h"

#include "model/model_config.h"

namespace px {

std::vector<std::string> layer_tensor_names(int layer) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  std::vector<std::string> names;
  for (const char* t : {"attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias",
                        "attn_v.weight", "attn_v.bias", "attn_q_norm.weight", "attn_k_norm.weight",
                        "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                        "ffn_down.weight"}) {
    names.push_back(p + t);
  }
  return names;
}

std::vector<std::string> embedding_output_tensor_names() {
  return {"token_embd.weight", "rope_freqs.weight", "output_norm.weight", "output.weight"};
}

std::vector<std::string> model_tensor_names(const ModelConfig& c) {
  std::vector<std::string> names = {"token_embd.weight", "rope_freqs.weight"};
  for (int l = 0; l < c.n_layers; ++l) {
    for (std::string& name : layer_tensor_names(l)) names.push_back(std::move(name));
  }
  names.push_back("output_norm.weight");
  names.push_back("output.weight");
  return names;
}

}  // namespace px
