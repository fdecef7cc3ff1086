// SIMD row kernels for Q8_0 / Q4_0 weights against Q8_32 activations (see matmul_kernels.h):
// per 32-element block an exact integer dot product, then one f32 multiply-add by
// d_weight * d_activation into a vector accumulator.
#include "kernels/cpu/activations.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/matmul_scalar.h"
#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_q8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/cpu/int8_dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
#if HWY_TARGET == HWY_SCALAR
void Q8Rows(DType type, const kernels::RowRange& rows, const QuantizedActivations& acts,
            int64_t t0, int64_t t1, float* y, int64_t y_stride) {
  kernels::scalar::q8_rows(type, rows, acts, t0, t1, y, y_stride);
}
#else
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kPieces = kQK / static_cast<int>(kQBytes);  // vectors per 32-element block

// Signed weights of piece p (elements p*kQBytes ...) of a block.
HWY_INLINE hn::Vec<QI8> BlockPiece(const BlockQ8_0& b, int p) {
  return hn::LoadU(QI8(), b.qs + p * kQBytes);
}
HWY_INLINE hn::Vec<QI8> BlockPiece(const BlockQ4_0& b, int p) {
  // Elements 0..15 are the low nibbles of qs[0..15], elements 16..31 the high nibbles.
#if PX_X86_256
  (void)p;
  const hn::Half<QU8> dh;
  const auto v = hn::LoadU(dh, b.qs);
  const auto q = hn::And(hn::Combine(QU8(), hn::ShiftRight<4>(v), v), hn::Set(QU8(), 0x0F));
#else
  const auto v = hn::LoadU(QU8(), b.qs);
  const auto q = p == 0 ? LowNibbles(v) : HighNibbles(v);
#endif
  return hn::Sub(hn::BitCast(QI8(), q), hn::Set(QI8(), 8));
}

// Integer dot product of one block with one token's block of activations.
template <typename Block>
HWY_INLINE hn::Vec<QI32> BlockDot(const hn::Vec<QI8>* w, const int8_t* xq) {
  auto sum = hn::Zero(QI32());
  for (int p = 0; p < kPieces; ++p) sum = DotI8(sum, w[p], hn::LoadU(QI8(), xq + p * kQBytes));
  return sum;
}

// Per token: two f32 accumulators alternating over even and odd blocks (to hide the
// multiply-add latency), summed at the end. Identical sequence for 1 and 4 tokens.
template <typename Block>
HWY_INLINE float DotOneToken(const Block* row, int64_t nb, const int8_t* xq, const float* xd) {
  const QF32 df;
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  for (int64_t b = 0; b < nb; ++b) {
    hn::Vec<QI8> w[kPieces];
    for (int p = 0; p < kPieces; ++p) w[p] = BlockPiece(row[b], p);
    const float dw = HalfToFloat(row[b].d);
    const auto isum = hn::ConvertTo(df, BlockDot<Block>(w, xq + b * kQK));
    if (b & 1) {
      acc1 = hn::MulAdd(isum, hn::Set(df, dw * xd[b]), acc1);
    } else {
      acc0 = hn::MulAdd(isum, hn::Set(df, dw * xd[b]), acc0);
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
}

template <typename Block>
HWY_INLINE void DotFourTokens(const Block* row, int64_t nb, const QuantizedActivations& acts,
                              int64_t t, float* out, int64_t out_stride) {
  const QF32 df;
  const int8_t* q0 = acts.q(t);
  const int8_t* q1 = acts.q(t + 1);
  const int8_t* q2 = acts.q(t + 2);
  const int8_t* q3 = acts.q(t + 3);
  const float* d0 = acts.scales(t);
  const float* d1 = acts.scales(t + 1);
  const float* d2 = acts.scales(t + 2);
  const float* d3 = acts.scales(t + 3);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
  for (int64_t b = 0; b < nb; ++b) {
    hn::Vec<QI8> w[kPieces];
    for (int p = 0; p < kPieces; ++p) w[p] = BlockPiece(row[b], p);
    const float dw = HalfToFloat(row[b].d);
    const auto s0 = hn::ConvertTo(df, BlockDot<Block>(w, q0 + b * kQK));
    const auto s1 = hn::ConvertTo(df, BlockDot<Block>(w, q1 + b * kQK));
    const auto s2 = hn::ConvertTo(df, BlockDot<Block>(w, q2 + b * kQK));
    const auto s3 = hn::ConvertTo(df, BlockDot<Block>(w, q3 + b * kQK));
    if (b & 1) {
      b0 = hn::MulAdd(s0, hn::Set(df, dw * d0[b]), b0);
      b1 = hn::MulAdd(s1, hn::Set(df, dw * d1[b]), b1);
      b2 = hn::MulAdd(s2, hn::Set(df, dw * d2[b]), b2);
      b3 = hn::MulAdd(s3, hn::Set(df, dw * d3[b]), b3);
    } else {
      a0 = hn::MulAdd(s0, hn::Set(df, dw * d0[b]), a0);
      a1 = hn::MulAdd(s1, hn::Set(df, dw * d1[b]), a1);
      a2 = hn::MulAdd(s2, hn::Set(df, dw * d2[b]), a2);
      a3 = hn::MulAdd(s3, hn::Set(df, dw * d3[b]), a3);
    }
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, b0)));
  out[out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a1, b1)));
  out[2 * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a2, b2)));
  out[3 * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a3, b3)));
}

template <typename Block>
void Rows(const kernels::RowRange& rows, const QuantizedActivations& acts, int64_t t0,
          int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const Block* row = reinterpret_cast<const Block*>(rows.data + r * rows.row_bytes);
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) DotFourTokens(row, nb, acts, t, y + t * y_stride + r, y_stride);
    for (; t < t1; ++t) y[t * y_stride + r] = DotOneToken(row, nb, acts.q(t), acts.scales(t));
  }
}

void Q8Rows(DType type, const kernels::RowRange& rows, const QuantizedActivations& acts,
            int64_t t0, int64_t t1, float* y, int64_t y_stride) {
  if (type == DType::Q8_0) return Rows<BlockQ8_0>(rows, acts, t0, t1, y, y_stride);
  return Rows<BlockQ4_0>(rows, acts, t0, t1, y, y_stride);
}

#endif  // HWY_TARGET == HWY_SCALAR
}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px::kernels {
HWY_EXPORT(Q8Rows);

void q8_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
             int64_t t1, float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(Q8Rows)(type, rows, acts, t0, t1, y, y_stride);
}

}  // namespace px::kernels
#endif  // HWY_ONCE
