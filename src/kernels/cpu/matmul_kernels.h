#pragma once
// Internal interface between matmul.cpp (threading, tiling) and the SIMD row kernels, one
// translation unit per weight family. Each computes
//   y[t * y_stride + r] = dot(W[r], x_t)   for r in [r0, r1), t in [t0, t1)
// and gives every (r, t) the same arithmetic whatever the ranges, so results do not depend
// on how rows and tokens are split.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace px {

class QuantizedActivations;

namespace kernels {

struct RowRange {
  const uint8_t* data;  // row 0 of the weight matrix
  size_t row_bytes;
  int64_t cols;
  int64_t r0, r1;
};

// F32 / F16 / BF16 weights with f32 activations x [n_tokens, cols].
void float_rows(DType type, const RowRange& rows, const float* x, int64_t t0, int64_t t1,
                float* y, int64_t y_stride);

// Q8_0 / Q4_0 weights with ActFormat::Q8_32 activations.
void q8_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
             int64_t t1, float* y, int64_t y_stride);

// Q4_K / Q6_K weights with ActFormat::Q8_256 activations.
void kquant_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
                 int64_t t1, float* y, int64_t y_stride);

}  // namespace kernels
}  // namespace px
