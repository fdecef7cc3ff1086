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

constexpr int kVecs = kQK_K / static_cast<int>(kQBytes);  // vectors per super-block

// A decoded super-block: vector v holds the unsigned quants of elements
// v*kQBytes .. (v+1)*kQBytes-1 and, per int16 lane (= element pair), their scale.
struct SuperBlock {
  hn::Vec<QU8> q[kVecs];
  hn::Vec<QI16> scale[kVecs];
  float d;
  float corr_scale;
  int32_t corr_w[16];
};

HWY_INLINE void Decode(const BlockQ4_K& b, SuperBlock& s) {
  // The 12 scale bytes as three little-endian words: scales 0-3 and mins 0-3 are the low 6
  // bits of bytes 0-3 and 4-7; scales/mins 4-7 take nibbles of bytes 8-11 plus the top two
  // bits of bytes 0-3 / 4-7.
  uint32_t u[3];
  std::memcpy(u, b.scales, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  uint8_t sc[8], m[8];
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
  for (int v = 0; v < kVecs; ++v) {
    // 64-element chunk c keeps 32 bytes: low nibbles are elements 0-31, high are 32-63.
    const int e = v * static_cast<int>(kQBytes);
    const int c = e / 64, high = (e % 64) / 32, off = e % 32;
    const auto bytes = hn::LoadU(QU8(), b.qs + 32 * c + off);
    s.q[v] = high ? HighNibbles(bytes) : LowNibbles(bytes);
    s.scale[v] = hn::Set(QI16(), sc[e / 32]);
  }
  s.d = HalfToFloat(b.d);
  s.corr_scale = HalfToFloat(b.dmin);
  for (int g = 0; g < 16; ++g) s.corr_w[g] = m[g / 2];
}

HWY_INLINE void Decode(const BlockQ6_K& b, SuperBlock& s) {
  const auto three = hn::Set(QU8(), 3);
  for (int v = 0; v < kVecs; ++v) {
    // Per 128-element half: element 32k + l takes its low 4 bits from ql[l + 32 (k odd)]
    // (low nibble for k < 2, high for k >= 2) and its high 2 bits from qh[l] >> 2k.
    const int e = v * static_cast<int>(kQBytes);
    const int h = e / 128, k = (e % 128) / 32, off = e % 32;
    const auto ql = hn::LoadU(QU8(), b.ql + 64 * h + 32 * (k & 1) + off);
    const auto qh = hn::LoadU(QU8(), b.qh + 32 * h + off);
    const auto low = k < 2 ? LowNibbles(ql) : HighNibbles(ql);
    hn::Vec<QU8> high2;
    switch (k) {
      case 0: high2 = hn::And(qh, three); break;
      case 1: high2 = hn::And(hn::ShiftRight<2>(qh), three); break;
      case 2: high2 = hn::And(hn::ShiftRight<4>(qh), three); break;
      default: high2 = hn::ShiftRight<6>(qh); break;
    }
    s.q[v] = hn::Or(low, hn::ShiftLeft<4>(high2));
    const int g = e / 16;  // 16-element scale group
    s.scale[v] = SplitSet(b.scales[g], kQBytes == 32 ? b.scales[g + 1] : b.scales[g]);
  }
  s.d = HalfToFloat(b.d);
  s.corr_scale = s.d;
  for (int g = 0; g < 16; ++g) s.corr_w[g] = 32 * b.scales[g];
}

// One super-block against one token: adds d*d_x*isum to acc and corr_scale*d_x*corr to corr.
HWY_INLINE void Accumulate(const SuperBlock& s, const int8_t* xq, float xd, const int16_t* sums16,
                           hn::Vec<QF32>& acc, float& corr) {
  auto isum = hn::Zero(QI32());
  for (int v = 0; v < kVecs; ++v) {
    const auto x = hn::LoadU(QI8(), xq + v * kQBytes);
    isum = hn::Add(isum, MulPairsI16(MulPairsU8I8(s.q[v], x), s.scale[v]));
  }
  int32_t c = 0;
  for (int g = 0; g < 16; ++g) c += s.corr_w[g] * sums16[g];
  acc = hn::MulAdd(hn::ConvertTo(QF32(), isum), hn::Set(QF32(), s.d * xd), acc);
  corr += (s.corr_scale * xd) * static_cast<float>(c);
}

HWY_INLINE float Total(hn::Vec<QF32> acc, float corr) {
  return hn::GetLane(hn::SumOfLanes(QF32(), acc)) - corr;
}

template <typename Block>
void Rows(const kernels::RowRange& rows, const QuantizedActivations& acts, int64_t t0,
          int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK_K;
  SuperBlock s;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const Block* row = reinterpret_cast<const Block*>(rows.data + r * rows.row_bytes);
    int64_t t = t0;
    // Four tokens share each decoded super-block.
    for (; t + 4 <= t1; t += 4) {
      auto a0 = hn::Zero(QF32()), a1 = hn::Zero(QF32()), a2 = hn::Zero(QF32()),
           a3 = hn::Zero(QF32());
      float c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (int64_t b = 0; b < nb; ++b) {
        Decode(row[b], s);
        Accumulate(s, acts.q(t) + b * kQK_K, acts.scales(t)[b], acts.sums16(t) + b * 16, a0, c0);
        Accumulate(s, acts.q(t + 1) + b * kQK_K, acts.scales(t + 1)[b],
                   acts.sums16(t + 1) + b * 16, a1, c1);
        Accumulate(s, acts.q(t + 2) + b * kQK_K, acts.scales(t + 2)[b],
                   acts.sums16(t + 2) + b * 16, a2, c2);
        Accumulate(s, acts.q(t + 3) + b * kQK_K, acts.scales(t + 3)[b],
                   acts.sums16(t + 3) + b * 16, a3, c3);
      }
      y[t * y_stride + r] = Total(a0, c0);
      y[(t + 1) * y_stride + r] = Total(a1, c1);
      y[(t + 2) * y_stride + r] = Total(a2, c2);
      y[(t + 3) * y_stride + r] = Total(a3, c3);
    }
    for (; t < t1; ++t) {
      auto a = hn::Zero(QF32());
      float c = 0;
      for (int64_t b = 0; b < nb; ++b) {
        Decode(row[b], s);
        Accumulate(s, acts.q(t) + b * kQK_K, acts.scales(t)[b], acts.sums16(t) + b * 16, a, c);
      }
      y[t * y_stride + r] = Total(a, c);
    }
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
