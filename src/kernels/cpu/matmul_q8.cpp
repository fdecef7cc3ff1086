// SIMD row kernels for Q8_0 / Q4_0 weights against Q8_32 activations (see matmul_kernels.h):
// per 32-element block an exact integer dot product, then one f32 multiply-add by
// d_weight * d_activation into a vector accumulator. Q8_0 uses a signed x signed byte dot
// product (unsigned q + 128 on AVX3_DL); Q4_0 multiplies its unsigned nibbles q and corrects
// for the -8 offset by starting the block's integer sum at -8 * (sum of the activations).
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

// Weights of piece p (elements p*kQBytes ...) of a block.
#if HWY_TARGET == HWY_AVX3_DL
// With VNNI's unsigned x signed product (no int16 saturation), Q8_0 goes unsigned too:
// q + 128, with the offset folded into BlockSumStart like Q4_0's.
HWY_INLINE hn::Vec<QU8> BlockPiece(const BlockQ8_0& b, int p) {
  return hn::Xor(hn::LoadU(QU8(), reinterpret_cast<const uint8_t*>(b.qs) + p * kQBytes),
                 hn::Set(QU8(), 0x80));
}
#else
HWY_INLINE hn::Vec<QI8> BlockPiece(const BlockQ8_0& b, int p) {
  return hn::LoadU(QI8(), b.qs + p * kQBytes);
}
#endif
HWY_INLINE hn::Vec<QU8> BlockPiece(const BlockQ4_0& b, int p) {
  // Elements 0..15 are the low nibbles of qs[0..15], elements 16..31 the high nibbles.
#if PX_X86_256
  (void)p;
  // The 16 bytes in both 128-bit halves; the upper half shifted right by 4 bits.
  const __m256i both =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
  const hn::Vec<QU8> shifted{_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4))};
  const auto q = hn::And(shifted, hn::Set(QU8(), 0x0F));
#else
  const auto v = hn::LoadU(QU8(), b.qs);
  const auto q = p == 0 ? LowNibbles(v) : HighNibbles(v);
#endif
  return q;
}

HWY_INLINE hn::Vec<QI32> PieceDot(hn::Vec<QI32> acc, hn::Vec<QI8> w, hn::Vec<QI8> x) {
  return DotI8(acc, w, x);
}
HWY_INLINE hn::Vec<QI32> PieceDot(hn::Vec<QI32> acc, hn::Vec<QU8> w, hn::Vec<QI8> x) {
  return DotU8I8(acc, w, x);
}

// Starting value of block b's integer sum for one token: minus the quants' offset times
// sum(x), spread evenly over the int32 lanes (Q4_0: offset 8; Q8_0: 128 on AVX3_DL, else 0).
#if HWY_TARGET == HWY_AVX3_DL
HWY_INLINE hn::Vec<QI32> BlockSumStart(const BlockQ8_0*, const int16_t* sums16, int64_t b) {
  return hn::Set(QI32(), -16 * (sums16[2 * b] + sums16[2 * b + 1]));  // 128 over 8 lanes
}
#else
HWY_INLINE hn::Vec<QI32> BlockSumStart(const BlockQ8_0*, const int16_t*, int64_t) {
  return hn::Zero(QI32());
}
#endif
HWY_INLINE hn::Vec<QI32> BlockSumStart(const BlockQ4_0*, const int16_t* sums16, int64_t b) {
  constexpr int kPerLane = 8 / static_cast<int>(kQBytes / 4);  // 8 spread over 8 or 4 lanes
  return hn::Set(QI32(), -kPerLane * (sums16[2 * b] + sums16[2 * b + 1]));
}

// Tokens per register tile (see matmul_float.cpp): 4 rows x 4 tokens with 32 registers.
constexpr int kTileTokens = HWY_MAX_BYTES >= 64 ? 4 : 2;

// R rows x T tokens. Every (row, token) has one f32 accumulator fed block by block: the
// exact integer sum of the block, converted, times d_w * d_x. Same arithmetic for every
// tile shape, so outputs do not depend on how rows and tokens are grouped.
template <int R, int T, typename Block>
HWY_INLINE void Tile(const Block* const* w, int64_t nb, const QuantizedActivations& acts,
                     int64_t t0, float* y, int64_t y_stride) {
  const QF32 df;
  hn::Vec<QF32> acc[R][T];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  }
  const int8_t* xq[T];
  const float* xd[T];
  const int16_t* xs[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    xq[t] = acts.q(t0 + t);
    xd[t] = acts.scales(t0 + t);
    xs[t] = acts.sums16(t0 + t);
  }
  using WeightVec = decltype(BlockPiece(w[0][0], 0));
  for (int64_t b = 0; b < nb; ++b) {
    WeightVec wv[R][kPieces];
    float dw[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
      for (int p = 0; p < kPieces; ++p) wv[r][p] = BlockPiece(w[r][b], p);
      dw[r] = HalfToFloat(w[r][b].d);
    }
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      hn::Vec<QI8> xv[kPieces];
#pragma GCC unroll 2
      for (int p = 0; p < kPieces; ++p) xv[p] = hn::LoadU(QI8(), xq[t] + b * kQK + p * kQBytes);
      const auto start = BlockSumStart(w[0], xs[t], b);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        auto isum = start;
#pragma GCC unroll 2
        for (int p = 0; p < kPieces; ++p) isum = PieceDot(isum, wv[r][p], xv[p]);
        acc[r][t] = hn::MulAdd(hn::ConvertTo(df, isum), hn::Set(df, dw[r] * xd[t][b]), acc[r][t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      y[(t0 + t) * y_stride + r] = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
    }
  }
}

template <int R, typename Block>
HWY_INLINE void RowGroup(const Block* const* w, int64_t nb, const QuantizedActivations& acts,
                         int64_t t0, int64_t t1, float* y, int64_t y_stride) {
  int64_t t = t0;
  for (; t + kTileTokens <= t1; t += kTileTokens) Tile<R, kTileTokens>(w, nb, acts, t, y, y_stride);
  for (; t < t1; ++t) Tile<R, 1>(w, nb, acts, t, y, y_stride);
}

template <typename Block>
void Rows(const kernels::RowRange& rows, const QuantizedActivations& acts, int64_t t0,
          int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK;
  const auto row = [&](int64_t r) {
    return reinterpret_cast<const Block*>(rows.data + r * rows.row_bytes);
  };
  int64_t r = rows.r0;
  for (; r + 4 <= rows.r1; r += 4) {
    kernels::prefetch_rows(rows, r + kernels::kPrefetchRowsAhead, 4);
    const Block* w[4] = {row(r), row(r + 1), row(r + 2), row(r + 3)};
    RowGroup<4>(w, nb, acts, t0, t1, y + r, y_stride);
  }
  for (; r < rows.r1; ++r) {
    const Block* w[1] = {row(r)};
    RowGroup<1>(w, nb, acts, t0, t1, y + r, y_stride);
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
