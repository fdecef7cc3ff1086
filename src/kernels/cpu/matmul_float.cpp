// SIMD row kernels for F32 / F16 / BF16 weights (see matmul_kernels.h). Half-precision
// weights are widened to f32 in registers; activations stay f32.
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
  return fp16_to_f32(reinterpret_cast<const uint16_t&>(*p));
}
inline float ScalarWeight(const hwy::bfloat16_t* p) {
  return bf16_to_f32(reinterpret_cast<const uint16_t&>(*p));
}

// Every token's dot product uses two vector accumulators over pairs of vectors, one more
// for an odd vector, then a scalar tail: the same sequence in the 1- and 4-token kernels.
template <typename W>
HWY_INLINE float Finish(DF df, hn::Vec<DF> acc0, hn::Vec<DF> acc1, const W* w, const float* x,
                        int64_t from, int64_t cols) {
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (int64_t i = from; i < cols; ++i) sum += ScalarWeight(w + i) * x[i];
  return sum;
}

template <typename W>
HWY_INLINE float DotOneToken(const W* w, const float* x, int64_t cols) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * n <= cols; i += 2 * n) {
    acc0 = hn::MulAdd(LoadWeights(df, w + i), hn::LoadU(df, x + i), acc0);
    acc1 = hn::MulAdd(LoadWeights(df, w + i + n), hn::LoadU(df, x + i + n), acc1);
  }
  if (i + n <= cols) {
    acc0 = hn::MulAdd(LoadWeights(df, w + i), hn::LoadU(df, x + i), acc0);
    i += n;
  }
  return Finish(df, acc0, acc1, w, x, i, cols);
}

// Four tokens share each weight load. x0..x3 are the tokens' activation rows.
template <typename W>
HWY_INLINE void DotFourTokens(const W* w, const float* x0, const float* x1, const float* x2,
                              const float* x3, int64_t cols, float* out, int64_t out_stride) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * n <= cols; i += 2 * n) {
    const auto w0 = LoadWeights(df, w + i);
    const auto w1 = LoadWeights(df, w + i + n);
    a0 = hn::MulAdd(w0, hn::LoadU(df, x0 + i), a0);
    a1 = hn::MulAdd(w0, hn::LoadU(df, x1 + i), a1);
    a2 = hn::MulAdd(w0, hn::LoadU(df, x2 + i), a2);
    a3 = hn::MulAdd(w0, hn::LoadU(df, x3 + i), a3);
    b0 = hn::MulAdd(w1, hn::LoadU(df, x0 + i + n), b0);
    b1 = hn::MulAdd(w1, hn::LoadU(df, x1 + i + n), b1);
    b2 = hn::MulAdd(w1, hn::LoadU(df, x2 + i + n), b2);
    b3 = hn::MulAdd(w1, hn::LoadU(df, x3 + i + n), b3);
  }
  if (i + n <= cols) {
    const auto w0 = LoadWeights(df, w + i);
    a0 = hn::MulAdd(w0, hn::LoadU(df, x0 + i), a0);
    a1 = hn::MulAdd(w0, hn::LoadU(df, x1 + i), a1);
    a2 = hn::MulAdd(w0, hn::LoadU(df, x2 + i), a2);
    a3 = hn::MulAdd(w0, hn::LoadU(df, x3 + i), a3);
    i += n;
  }
  out[0] = Finish(df, a0, b0, w, x0, i, cols);
  out[out_stride] = Finish(df, a1, b1, w, x1, i, cols);
  out[2 * out_stride] = Finish(df, a2, b2, w, x2, i, cols);
  out[3 * out_stride] = Finish(df, a3, b3, w, x3, i, cols);
}

template <typename W>
void Rows(const kernels::RowRange& rows, const float* x, int64_t t0, int64_t t1, float* y,
          int64_t y_stride) {
  const int64_t cols = rows.cols;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const W* w = reinterpret_cast<const W*>(rows.data + r * rows.row_bytes);
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) {
      const float* xt = x + t * cols;
      DotFourTokens(w, xt, xt + cols, xt + 2 * cols, xt + 3 * cols, cols, y + t * y_stride + r,
                    y_stride);
    }
    for (; t < t1; ++t) y[t * y_stride + r] = DotOneToken(w, x + t * cols, cols);
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
