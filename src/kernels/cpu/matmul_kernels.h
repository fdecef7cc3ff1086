#pragma once
// Internal interface between matmul.cpp (threading, tiling) and the SIMD row kernels, one
// translation unit per weight family. Each computes
//   y[t * y_stride + r] = dot(W[r], x_t)   for r in [r0, r1), t in [t0, t1)
// and gives every (r, t) the same arithmetic whatever the ranges, so results do not depend
// on how rows and tokens are split.
#include <algorithm>
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
  int64_t prefetch_end = 0;  // rows below this may be prefetched (the caller's whole chunk); 0: r1
};

// Rows a kernel fetches ahead of the ones it multiplies. Kernels read a few short rows side
// by side, a pattern the hardware prefetchers pick up late: from DRAM a Q8_0 single-token
// product ran at 8 GB/s per core without this and at 30 with it (the core streams 31).
// Two rows ahead (one group of 4 rows being read, the next arriving) decoded F16 ~3 % faster
// than four at ~60 GB/s (4 paired runs: 113-118 vs 110-115 tok/s), F32 the same.
constexpr int64_t kPrefetchRowsAhead = 2;

// Prefetches rows [r, r + n) of the matrix when they are all in the range, for reading once.
inline __attribute__((always_inline)) void prefetch_rows(const RowRange& rows, int64_t r, int64_t n) {
  if (r + n > std::max(rows.r1, rows.prefetch_end)) return;
  const uint8_t* begin = rows.data + r * rows.row_bytes;
  const size_t bytes = size_t(n) * rows.row_bytes;
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(begin + off, 0, 0);
}

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
