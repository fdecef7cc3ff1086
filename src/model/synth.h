#pragma once
// Synthetic models: small random-weight GGUF files of each supported architecture, in
// llama.cpp's tensor names and metadata keys, so tests and demos never need a download.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace px {

struct SynthSpec {
  std::string arch = "llama";  // llama | qwen2 (q/k/v biases) | qwen3 (q/k RMS norms)
  int n_layers = 2;
  int n_embd = 64;
  int n_heads = 4;
  int n_kv_heads = 2;
  int n_ff = 128;
  int head_dim = 0;  // 0 -> n_embd / n_heads
  int n_ctx = 2048;
  float rope_base = 10000.f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;      // no output.weight; token_embd doubles as the head
  bool llama3_rope_scaling = false;  // adds rope_freqs.weight like Llama 3.1
  DType type = DType::F32;           // storage of 2-D weights; 1-D tensors are always F32
  uint64_t seed = 1;
  std::string vocab_path;  // GGUF whose tokenizer.* keys are copied; empty -> built-in vocab
  std::string name = "synthetic";
};

// Throws px::Error naming the field, its value and what is expected.
void validate_synth_spec(const SynthSpec& spec);

// head_dim with the default applied.
int synth_head_dim(const SynthSpec& spec);

// Validates the spec and writes the model. The bytes depend only on the spec and its seed.
//
// Weight distributions (each tensor from its own sub-seed of seed and tensor name):
//   2-D projections      N(0, 1/fan_in), fan_in = dims[0] (keeps activations at unit scale)
//   token_embd           N(0, 1); with tied embeddings N(0, (3/sqrt(n_embd))^2) instead, the
//                        output head's scale, since it then also produces the logits
//   output               N(0, (3/sqrt(n_embd))^2): logits of unit-RMS hidden states spread a
//                        few units, so sampling is neither uniform nor one-hot
//   norm weights         1 + N(0, 0.1^2);  biases N(0, 0.1^2)
void write_synthetic_model(const SynthSpec& spec, const std::string& out_path);

// Llama 3 frequency factors (factor 8, low 1, high 4, original context 8192), one per
// rotary pair: what llama.cpp stores in rope_freqs.weight, dividing each frequency.
std::vector<float> llama3_rope_factors(int head_dim, float rope_base);

}  // namespace px
