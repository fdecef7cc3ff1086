// SIMD row kernels for F32 / F16 / BF16 weights (see matmul_kernels.h). Half-precision
// weights are widened to f32 in registers; activations stay f32.
#include <cstring>

#include "core/fp16.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/matmul_scalar.h"
#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_float.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
#if HWY_TARGET == HWY_SCALAR
void FloatRows(DType type, const kernels::RowRange& rows, const float* x, int64_t t0, int64_t t1,
               float* y, int64_t y_stride) {
  kernels::scalar::float_rows(type, rows, x, t0, t1, y, y_stride);
}
#else
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const float* p) { return hn::LoadU(df, p); }
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::float16_t* p) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), p));
}
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::bfloat16_t* p) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), p));
}

inline float ScalarWeight(const float* p) { return *p; }
inline float ScalarWeight(const hwy::float16_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return fp16_to_f32(bits);
}
inline float ScalarWeight(const hwy::bfloat16_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bf16_to_f32(bits);
}

// Tokens per register tile: 4 rows x 4 tokens of accumulators need the 32 registers of
// AVX-512; with 16 registers (AVX2, SSE4) tiles are 4 rows x 2 tokens.
constexpr int kTileTokens = HWY_MAX_BYTES >= 64 ? 4 : 2;

// R rows x T tokens. Every (row, token) has one accumulator fed vector by vector in column
// order, then a horizontal sum, then the scalar tail: the same arithmetic for every tile
// shape, so outputs do not depend on how rows and tokens are grouped. Several rows per tile
// also give a single token independent multiply-add chains.
template <int R, int T, typename W>
HWY_INLINE void Tile(const W* const* w, const float* x, int64_t cols, float* y,
                     int64_t y_stride) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<DF> acc[R][T];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  }
  int64_t i = 0;
  for (; i + n <= cols; i += n) {
    hn::Vec<DF> wv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) wv[r] = LoadWeights(df, w[r] + i);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const auto xv = hn::LoadU(df, x + t * cols + i);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
      for (int64_t j = i; j < cols; ++j) sum += ScalarWeight(w[r] + j) * x[t * cols + j];
      y[t * y_stride + r] = sum;
    }
  }
}

// Rows [r, r + R) against tokens [t0, t1): full token tiles, then single tokens.
template <int R, typename W>
HWY_INLINE void RowGroup(const W* const* w, const float* x, int64_t cols, int64_t t0, int64_t t1,
                         float* y, int64_t y_stride) {
  int64_t t = t0;
  for (; t + kTileTokens <= t1; t += kTileTokens) {
    Tile<R, kTileTokens>(w, x + t * cols, cols, y + t * y_stride, y_stride);
  }
  for (; t < t1; ++t) Tile<R, 1>(w, x + t * cols, cols, y + t * y_stride, y_stride);
}

template <typename W>
void Rows(const kernels::RowRange& rows, const float* x, int64_t t0, int64_t t1, float* y,
          int64_t y_stride) {
  const auto row = [&](int64_t r) {
    return reinterpret_cast<const W*>(rows.data + r * rows.row_bytes);
  };
  int64_t r = rows.r0;
  for (; r + 4 <= rows.r1; r += 4) {
    kernels::prefetch_rows(rows, r + kernels::kPrefetchRowsAhead, 4);
    const W* w[4] = {row(r), row(r + 1), row(r + 2), row(r + 3)};
    RowGroup<4>(w, x, rows.cols, t0, t1, y + r, y_stride);
  }
  for (; r < rows.r1; ++r) {
    const W* w[1] = {row(r)};
    RowGroup<1>(w, x, rows.cols, t0, t1, y + r, y_stride);
  }
}

void FloatRows(DType type, const kernels::RowRange& rows, const float* x, int64_t t0, int64_t t1,
               float* y, int64_t y_stride) {
  switch (type) {
    case DType::F32: return Rows<float>(rows, x, t0, t1, y, y_stride);
    case DType::F16: return Rows<hwy::float16_t>(rows, x, t0, t1, y, y_stride);
    default: return Rows<hwy::bfloat16_t>(rows, x, t0, t1, y, y_stride);
  }
}

#endif  // HWY_TARGET == HWY_SCALAR
}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px::kernels {
HWY_EXPORT(FloatRows);

void float_rows(DType type, const RowRange& rows, const float* x, int64_t t0, int64_t t1,
                float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(FloatRows)(type, rows, x, t0, t1, y, y_stride);
}

}  // namespace px::kernels
#endif  // HWY_ONCE
