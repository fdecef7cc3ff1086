#pragma once
// Plain C++ versions of the row kernels of matmul_kernels.h, with the same algorithms (int8
// activations, exact integer sums per block, f32 accumulation of blocks). Used by the
// HWY_SCALAR dispatch target (this compiler's portable fallback) and by tests as the
// reference the SIMD targets must agree with.
#include "kernels/cpu/matmul_kernels.h"

namespace px::kernels::scalar {

void float_rows(DType type, const RowRange& rows, const float* x, int64_t t0, int64_t t1,
                float* y, int64_t y_stride);
void q8_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
             int64_t t1, float* y, int64_t y_stride);
void kquant_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
                 int64_t t1, float* y, int64_t y_stride);

// One token row of activations rounded as in QuantizedActivations (block 32 or 256).
void quantize_activation_row(const float* x, int64_t cols, int64_t block, int8_t* q,
                             float* scales, int16_t* sums16);

}  // namespace px::kernels::scalar
