#pragma once
// Matrix products of a weight matrix (any computable dtype, straight from the mmap) with
// f32 activations.
#include <cstdint>

#include "core/dtype.h"

namespace px {

class ThreadPool;

// A weight matrix of `rows` rows of `cols` elements each, rows stored contiguously.
struct WeightView {
  const void* data = nullptr;
  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
};

// y[t * rows + r] = sum_c W[r, c] * x[t * cols + c]   for t < n_tokens, r < rows.
// x: [n_tokens, cols] f32, y: [n_tokens, rows] f32.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Dot product of one weight row (n elements of `type`) with f32 x.
float dot_row(DType type, const void* row, const float* x, int64_t n);

}  // namespace px
