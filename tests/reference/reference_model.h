#pragma once
// A deliberately simple double-precision transformer used as the oracle for the real forward
// pass. It shares only the GGUF reader and dequantize_row (both tested on their own) with the
// engine: hyperparameters, RoPE, attention and norms are written again here, plainly.
#include <cstdint>
#include <string>
#include <vector>

namespace px {
class GgufFile;
}

namespace px::testing {

// How the inputs of block-quantized weight matrices are treated. The engine's integer kernels
// round activations to int8 in blocks (32 for Q8_0/Q4_0, 256 for the K-quants; scale =
// amax / 127); `Int8Blocks` does the same here, in double, so that greedy decoding can be
// compared token for token. `Exact` keeps every activation exact: the ideal the engine's
// logits must stay close to.
enum class ActivationRounding { Exact, Int8Blocks };

class ReferenceModel {
 public:
  explicit ReferenceModel(const std::string& path,
                          ActivationRounding rounding = ActivationRounding::Exact);

  // Feeds one token at the next position and returns the logits after it.
  std::vector<double> step(int32_t token);
  // Greedy continuation: feeds the prompt, then picks argmax n times.
  std::vector<int32_t> greedy(const std::vector<int32_t>& prompt, int n);
  void reset();

  int n_vocab() const { return n_vocab_; }

 private:
  struct Matrix {
    std::vector<double> w;  // [rows, cols], row-major
    int activation_block = 0;  // > 0: inputs are rounded to int8 in blocks of this size
  };
  struct Layer {
    std::vector<double> attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
    Matrix wq, wk, wv, wo, gate, up, down;
    std::vector<std::vector<double>> keys, values;  // per position: [kv_dim]
  };
  Matrix load_matrix(const GgufFile& f, const std::string& name, int64_t elements) const;
  std::vector<double> matvec(const Matrix& w, std::vector<double> x, int rows) const;
  std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w) const;
  void rotate(double* head, int pos) const;

  ActivationRounding rounding_;
  std::string arch_;
  int n_layers_ = 0, n_embd_ = 0, n_heads_ = 0, n_kv_heads_ = 0, head_dim_ = 0, n_ff_ = 0, n_vocab_ = 0;
  double eps_ = 0, rope_base_ = 10000;
  bool neox_ = false;
  std::vector<double> rope_factors_;
  Matrix embedding_, output_;
  std::vector<double> output_norm_;
  std::vector<Layer> layers_;
  int pos_ = 0;
};

}  // namespace px::testing
