#pragma once
// Activations rounded to int8 once per matmul call, so that block-quantized weights can be
// multiplied with integer dot products (exact within a block) and one float multiply-add
// per block.
#include <cstdint>
#include <vector>

namespace px {

class ThreadPool;

enum class ActFormat {
  Q8_32,   // one f32 scale per 32 elements: for Q8_0 / Q4_0 weights
  Q8_256,  // one f32 scale per 256 elements: for the K-quants (like ggml's Q8_K)
};

constexpr int64_t act_block_size(ActFormat f) { return f == ActFormat::Q8_32 ? 32 : 256; }

// Token t, element i: x ~= scales(t)[i / block] * q(t)[i], where the scale of a block is
// amax / 127 and q = nearest integer to x / scale (|q| <= 127). sums16(t)[g] is the sum of
// q over elements 16g .. 16g+15 (for weight formats with offsets or mins).
// Storage grows to the largest shape seen and is then reused without allocating.
class QuantizedActivations {
 public:
  // cols must be a multiple of the format's block size. With a pool, tokens are split
  // over its threads.
  void quantize(ActFormat format, const float* x, int64_t n_tokens, int64_t cols,
                ThreadPool* pool = nullptr);

  ActFormat format() const { return format_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t cols() const { return cols_; }
  const int8_t* q(int64_t t) const { return q_.data() + t * cols_; }
  const float* scales(int64_t t) const { return scales_.data() + t * (cols_ / act_block_size(format_)); }
  const int16_t* sums16(int64_t t) const { return sums16_.data() + t * (cols_ / 16); }

 private:
  ActFormat format_ = ActFormat::Q8_32;
  int64_t n_tokens_ = 0;
  int64_t cols_ = 0;
  std::vector<int8_t> q_;
  std::vector<float> scales_;
  std::vector<int16_t> sums16_;
};

}  // namespace px
