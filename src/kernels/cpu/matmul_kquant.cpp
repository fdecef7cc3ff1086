// SIMD row kernels for Q4_K / Q6_K weights against Q8_256 activations (see
// matmul_kernels.h). Per 256-element super-block and token:
//   isum = sum over elements of scale(e) * q_w(e) * q_x(e)        (exact, int32)
//   corr = sum over 16-groups g of corr_w(g) * sum16_x(g)           (exact, int)
//   y   += d * d_x * isum - corr_scale * d_x * corr                  (f32)
// Q4_K: x = d*sc*q - dmin*m   -> scale = sc, corr_w = m,           corr_scale = dmin.
// Q6_K: x = d*sc*(q - 32)     -> scale = sc, corr_w = 32 * sc,     corr_scale = d.
#include <cstring>

#include "kernels/cpu/activations.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/matmul_scalar.h"
#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_kquant.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/cpu/int8_dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
#if HWY_TARGET == HWY_SCALAR
void KQuantRows(DType type, const kernels::RowRange& rows, const QuantizedActivations& acts,
                int64_t t0, int64_t t1, float* y, int64_t y_stride) {
  kernels::scalar::kquant_rows(type, rows, acts, t0, t1, y, y_stride);
}
#else
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kVecs = kQK_K / static_cast<int>(kQBytes);  // quant vectors per super-block
constexpr int kSumVecs = 32 / static_cast<int>(kQBytes);   // vectors of the 16 sums16

// Per-super-block values that do not depend on the token.
struct Prepared {
  uint8_t sc[16];  // Q4_K: 6-bit scale per 32-element sub-block; Q6_K: unused
  uint8_t m[8];    // Q4_K: 6-bit min per sub-block
  float d;
  float corr_scale;
#if PX_X86_256
  // int16 scales repeated in both 128-bit halves; ScaleVec picks lanes with one byte shuffle.
  hn::Vec<QI16> scale_src[2];
#endif
};

HWY_INLINE void Prepare(const BlockQ4_K& b, Prepared& p) {
  // The 12 scale bytes as three little-endian words: scales 0-3 and mins 0-3 are the low 6
  // bits of bytes 0-3 and 4-7; scales/mins 4-7 take nibbles of bytes 8-11 plus the top two
  // bits of bytes 0-3 / 4-7.
  uint32_t u[3];
  std::memcpy(u, b.scales, 12);
  const uint64_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
  const uint64_t sc_hi = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  const uint64_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  const uint64_t sc = sc_lo | (sc_hi << 32), m = m_lo | (m_hi << 32);
  std::memcpy(p.sc, &sc, 8);
  std::memcpy(p.m, &m, 8);
  p.d = HalfToFloat(b.d);
  p.corr_scale = HalfToFloat(b.dmin);
#if PX_X86_256
  const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc)));
  p.scale_src[0] = hn::Vec<QI16>{_mm256_broadcastsi128_si256(sc16)};
#endif
}

HWY_INLINE void Prepare(const BlockQ6_K& b, Prepared& p) {
  p.d = HalfToFloat(b.d);
  p.corr_scale = p.d;
#if PX_X86_256
  // Groups 0-7 (first 128 elements) and 8-15, each copied to both halves.
  const __m256i s16 =
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  p.scale_src[0] = hn::Vec<QI16>{_mm256_permute2x128_si256(s16, s16, 0x00)};
  p.scale_src[1] = hn::Vec<QI16>{_mm256_permute2x128_si256(s16, s16, 0x11)};
#endif
}

// Unsigned quants of elements v*kQBytes .. (v+1)*kQBytes-1.
HWY_INLINE hn::Vec<QU8> QuantVec(const BlockQ4_K& b, int v) {
  // 64-element chunk c keeps 32 bytes: low nibbles are elements 0-31, high are 32-63.
  const int e = v * static_cast<int>(kQBytes);
  const auto bytes = hn::LoadU(QU8(), b.qs + 32 * (e / 64) + e % 32);
  return (e % 64) < 32 ? LowNibbles(bytes) : HighNibbles(bytes);
}

HWY_INLINE hn::Vec<QU8> QuantVec(const BlockQ6_K& b, int v) {
  // Per 128-element half: element 32k + l takes its low 4 bits from ql[l + 32 (k odd)]
  // (low nibble for k < 2, high for k >= 2) and its high 2 bits from qh[l] >> 2k.
  const int e = v * static_cast<int>(kQBytes);
  const int h = e / 128, k = (e % 128) / 32, off = e % 32;
  const auto ql = hn::LoadU(QU8(), b.ql + 64 * h + 32 * (k & 1) + off);
  const auto qh = hn::LoadU(QU8(), b.qh + 32 * h + off);
  const auto low = k < 2 ? LowNibbles(ql) : HighNibbles(ql);
  // Move bits 2k, 2k+1 of qh to bits 4, 5.
  hn::Vec<QU8> high;
  switch (k) {
    case 0: high = ShiftLeftWide<4>(qh); break;
    case 1: high = ShiftLeftWide<2>(qh); break;
    case 2: high = qh; break;
    default: high = ShiftRightWide<2>(qh); break;
  }
  return hn::Or(low, hn::And(high, hn::Set(QU8(), 0x30)));
}

// Scale of each element pair (int16 lane) of quant vector v.
#if PX_X86_256
// Byte-shuffle indices selecting int16 lane i in every lane of a 128-bit half.
HWY_INLINE __m128i PickLane16(int i) { return _mm_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * i)); }

HWY_INLINE hn::Vec<QI16> ScaleVec(const BlockQ4_K&, const Prepared& p, int v) {
  const __m128i pick = PickLane16(v);  // one 32-element sub-block per vector
  return hn::Vec<QI16>{_mm256_shuffle_epi8(p.scale_src[0].raw, _mm256_setr_m128i(pick, pick))};
}
HWY_INLINE hn::Vec<QI16> ScaleVec(const BlockQ6_K&, const Prepared& p, int v) {
  // Vector v covers groups 2v and 2v+1: the first in its low half, the second in its high.
  const int g = 2 * (v % 4);
  return hn::Vec<QI16>{_mm256_shuffle_epi8(p.scale_src[v / 4].raw,
                                           _mm256_setr_m128i(PickLane16(g), PickLane16(g + 1)))};
}
#else
HWY_INLINE hn::Vec<QI16> ScaleVec(const BlockQ4_K&, const Prepared& p, int v) {
  return hn::Set(QI16(), p.sc[v * static_cast<int>(kQBytes) / 32]);
}
HWY_INLINE hn::Vec<QI16> ScaleVec(const BlockQ6_K& b, const Prepared&, int v) {
  return hn::Set(QI16(), b.scales[v * static_cast<int>(kQBytes) / 16]);  // one group
}
#endif

// Correction weights against the 16 activation sums of 16 elements, as kSumVecs int16
// vectors (Q6_K: 32 * scale of each group) or int32 per-32 weights (Q4_K: the mins).
HWY_INLINE hn::Vec<QI32> CorrSum(const BlockQ4_K&, const Prepared& p, const int16_t* sums16) {
  const QI16 d16;
  const hn::Rebind<uint8_t, QI32> du8;
  auto sum = hn::Zero(QI32());
#pragma GCC unroll 2
  for (int k = 0; k < kSumVecs; ++k) {
    // Adjacent pairs of 16-sums are the 32-element sub-block sums.
    const auto per32 = MulPairsI16(hn::LoadU(d16, sums16 + k * hn::Lanes(d16)), hn::Set(d16, 1));
    const auto mins = hn::PromoteTo(QI32(), hn::LoadU(du8, p.m + k * hn::Lanes(QI32())));
    sum = hn::Add(sum, hn::Mul(per32, hn::BitCast(QI32(), mins)));
  }
  return sum;
}
HWY_INLINE hn::Vec<QI32> CorrSum(const BlockQ6_K& b, const Prepared&, const int16_t* sums16) {
  const QI16 d16;
  const hn::Rebind<int8_t, QI16> di8;
  auto sum = hn::Zero(QI32());
#pragma GCC unroll 2
  for (int k = 0; k < kSumVecs; ++k) {
    const auto w = hn::ShiftLeft<5>(hn::PromoteTo(d16, hn::LoadU(di8, b.scales + k * hn::Lanes(d16))));
    sum = hn::Add(sum, MulPairsI16(hn::LoadU(d16, sums16 + k * hn::Lanes(d16)), w));
  }
  return sum;
}

// acc += d*d_x*isum - corr_scale*d_x*csum for one super-block and token.
HWY_INLINE hn::Vec<QF32> AddSuperBlock(hn::Vec<QF32> acc, hn::Vec<QI32> isum, hn::Vec<QI32> csum,
                                 const Prepared& p, float xd) {
  acc = hn::MulAdd(hn::ConvertTo(QF32(), isum), hn::Set(QF32(), p.d * xd), acc);
  return hn::NegMulAdd(hn::ConvertTo(QF32(), csum), hn::Set(QF32(), p.corr_scale * xd), acc);
}

HWY_INLINE hn::Vec<QI32> AddProducts(hn::Vec<QI32> isum, hn::Vec<QU8> q, hn::Vec<QI16> scale,
                                     const int8_t* xq) {
  return hn::Add(isum, MulPairsI16(MulPairsU8I8(q, hn::LoadU(QI8(), xq)), scale));
}

// One row, one token: decode and multiply in one pass.
template <typename Block>
HWY_INLINE float DotOneToken(const Block* row, int64_t nb, const QuantizedActivations& acts,
                             int64_t t) {
  const int8_t* xq = acts.q(t);
  const float* xd = acts.scales(t);
  const int16_t* sums = acts.sums16(t);
  auto acc = hn::Zero(QF32());
  Prepared p;
  for (int64_t b = 0; b < nb; ++b) {
    Prepare(row[b], p);
    auto isum = hn::Zero(QI32());
#pragma GCC unroll 16
    for (int v = 0; v < kVecs; ++v) {
      isum = AddProducts(isum, QuantVec(row[b], v), ScaleVec(row[b], p, v),
                         xq + b * kQK_K + v * kQBytes);
    }
    acc = AddSuperBlock(acc, isum, CorrSum(row[b], p, sums + b * 16), p, xd[b]);
  }
  return hn::GetLane(hn::SumOfLanes(QF32(), acc));
}

// One row, four tokens sharing each decoded super-block; per token the same arithmetic as
// DotOneToken.
template <typename Block>
HWY_INLINE void DotFourTokens(const Block* row, int64_t nb, const QuantizedActivations& acts,
                              int64_t t, float* out, int64_t out_stride) {
  auto a0 = hn::Zero(QF32()), a1 = hn::Zero(QF32()), a2 = hn::Zero(QF32()), a3 = hn::Zero(QF32());
  Prepared p;
  hn::Vec<QU8> q[kVecs];
  hn::Vec<QI16> scale[kVecs];
  for (int64_t b = 0; b < nb; ++b) {
    Prepare(row[b], p);
#pragma GCC unroll 16
    for (int v = 0; v < kVecs; ++v) {
      q[v] = QuantVec(row[b], v);
      scale[v] = ScaleVec(row[b], p, v);
    }
    const int64_t e0 = b * kQK_K;
    auto i0 = hn::Zero(QI32()), i1 = hn::Zero(QI32()), i2 = hn::Zero(QI32()), i3 = hn::Zero(QI32());
#pragma GCC unroll 16
    for (int v = 0; v < kVecs; ++v) {
      const int64_t e = e0 + v * kQBytes;
      i0 = AddProducts(i0, q[v], scale[v], acts.q(t) + e);
      i1 = AddProducts(i1, q[v], scale[v], acts.q(t + 1) + e);
      i2 = AddProducts(i2, q[v], scale[v], acts.q(t + 2) + e);
      i3 = AddProducts(i3, q[v], scale[v], acts.q(t + 3) + e);
    }
    a0 = AddSuperBlock(a0, i0, CorrSum(row[b], p, acts.sums16(t) + b * 16), p, acts.scales(t)[b]);
    a1 = AddSuperBlock(a1, i1, CorrSum(row[b], p, acts.sums16(t + 1) + b * 16), p, acts.scales(t + 1)[b]);
    a2 = AddSuperBlock(a2, i2, CorrSum(row[b], p, acts.sums16(t + 2) + b * 16), p, acts.scales(t + 2)[b]);
    a3 = AddSuperBlock(a3, i3, CorrSum(row[b], p, acts.sums16(t + 3) + b * 16), p, acts.scales(t + 3)[b]);
  }
  out[0] = hn::GetLane(hn::SumOfLanes(QF32(), a0));
  out[out_stride] = hn::GetLane(hn::SumOfLanes(QF32(), a1));
  out[2 * out_stride] = hn::GetLane(hn::SumOfLanes(QF32(), a2));
  out[3 * out_stride] = hn::GetLane(hn::SumOfLanes(QF32(), a3));
}

template <typename Block>
void Rows(const kernels::RowRange& rows, const QuantizedActivations& acts, int64_t t0,
          int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK_K;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    kernels::prefetch_rows(rows, r + kernels::kPrefetchRowsAhead, 1);
    const Block* row = reinterpret_cast<const Block*>(rows.data + r * rows.row_bytes);
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) DotFourTokens(row, nb, acts, t, y + t * y_stride + r, y_stride);
    for (; t < t1; ++t) y[t * y_stride + r] = DotOneToken(row, nb, acts, t);
  }
}

void KQuantRows(DType type, const kernels::RowRange& rows, const QuantizedActivations& acts,
                int64_t t0, int64_t t1, float* y, int64_t y_stride) {
  if (type == DType::Q4_K) return Rows<BlockQ4_K>(rows, acts, t0, t1, y, y_stride);
  return Rows<BlockQ6_K>(rows, acts, t0, t1, y, y_stride);
}

#endif  // HWY_TARGET == HWY_SCALAR
}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px::kernels {
HWY_EXPORT(KQuantRows);

void kquant_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
                 int64_t t1, float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(KQuantRows)(type, rows, acts, t0, t1, y, y_stride);
}

}  // namespace px::kernels
#endif  // HWY_ONCE
