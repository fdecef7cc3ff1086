// Row-wise ops of the transformer on f32 rows. The element-wise loops use Highway SIMD
// (with Highway's vector exp, max error 1 ulp); accumulations that feed a division use
// double. RoPE stays scalar: its trigonometry is done in double and shared per position.
#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/ops.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#if HWY_TARGET != HWY_SCALAR
#include <hwy/contrib/math/math-inl.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
// The portable fallback: plain loops (Highway's math functions need vector ops).
double SumOfSquares(const float* x, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}
double ExpShiftedAndSum(float* x, int64_t n, float max) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - max);
  return sum;
}
void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(std::min(-gate[i], 88.0f))) * up[i];
}
float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}
void Axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
#else
using DF = hn::ScalableTag<float>;

// Sum of x^2 in double: each f32 vector is widened in two halves.
double SumOfSquares(const float* x, int64_t n) {
  const DF df;
  const hn::Repartition<double, DF> dd;
  const hn::Half<DF> dh;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto acc_lo = hn::Zero(dd), acc_hi = hn::Zero(dd);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::LoadU(df, x + i);
    const auto lo = hn::PromoteTo(dd, hn::LowerHalf(dh, v));
    const auto hi = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
    acc_lo = hn::MulAdd(lo, lo, acc_lo);
    acc_hi = hn::MulAdd(hi, hi, acc_hi);
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(acc_lo, acc_hi)));
  for (; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}

// exp of x - max, clamped where f32 exp underflows anyway (also maps -inf to 0).
template <class V>
HWY_INLINE V ExpShifted(DF df, V v, V max) {
  return hn::Exp(df, hn::Max(hn::Sub(v, max), hn::Set(df, -104.0f)));
}

// x = exp(x - max) in place; returns the sum of the results, accumulated in double.
double ExpShiftedAndSum(float* x, int64_t n, float max) {
  const DF df;
  const hn::Repartition<double, DF> dd;
  const hn::Half<DF> dh;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto vmax = hn::Set(df, max);
  auto acc = hn::Zero(dd);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = ExpShifted(df, hn::LoadU(df, x + i), vmax);
    hn::StoreU(e, df, x + i);
    acc = hn::Add(acc, hn::Add(hn::PromoteTo(dd, hn::LowerHalf(dh, e)),
                               hn::PromoteTo(dd, hn::UpperHalf(dh, e))));
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, acc));
  if (i < n) {  // the tail through a zero-padded vector
    const int64_t rest = n - i;
    alignas(64) float tmp[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(x + i, x + n, tmp);
    hn::Store(ExpShifted(df, hn::Load(df, tmp), vmax), df, tmp);
    for (int64_t k = 0; k < rest; ++k) sum += x[i + k] = tmp[k];
  }
  return sum;
}

// gate / (1 + exp(-gate)) * up; exp's argument is capped at 88, below f32 overflow, where
// the quotient is already 0 to within 1e-36.
template <class V>
HWY_INLINE V Silu(DF df, V g, V u) {
  const auto e = hn::Exp(df, hn::Min(hn::Neg(g), hn::Set(df, 88.0f)));
  return hn::Mul(hn::Div(g, hn::Add(hn::Set(df, 1.0f), e)), u);
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(Silu(df, hn::LoadU(df, gate + i), hn::LoadU(df, up + i)), df, out + i);
  }
  if (i < n) {  // the tail through zero-padded vectors
    alignas(64) float g[HWY_MAX_BYTES / sizeof(float)] = {};
    alignas(64) float u[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    hn::Store(Silu(df, hn::Load(df, g), hn::Load(df, u)), df, g);
    std::copy(g, g + (n - i), out + i);
  }
}
// f32 dot product: vector partial sums (two accumulators), then the lanes, then the tail.
// Not HWY_INLINE: it is exported for dynamic dispatch, and GCC refuses to inline an
// always_inline target function into the dispatcher on aarch64 (target option mismatch).
float Dot(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), hn::LoadU(df, b + i + lanes), acc1);
  }
  for (; i + lanes <= n; i += lanes) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// y += alpha * x
void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto va = hn::Set(df, alpha);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}
#endif  // HWY_TARGET == HWY_SCALAR

inline const float* KvRow(const KvRows& rows, int p) {
  return rows.blocks[p / rows.block_size] + int64_t(p % rows.block_size) * rows.row_stride;
}

// scores[g * n_pos + p] = scale * q_g . k_p, from dimension-major key blocks: one vector holds
// a dimension of `lanes` consecutive positions, so a score is a chain of fused multiply-adds
// over the dimensions in order (no horizontal sum). Positions of a block beyond a whole number
// of vectors (never with 16-position blocks) take the same chain in scalar code.
void AttendScores(const float* q, int n_q, int64_t head_dim, float scale, const KeyBlocks& keys, int n_pos,
                  float* scores) {
  const hn::ScalableTag<float> df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  const int bs = keys.block_size;
  const int vector_slots = bs / lanes * lanes;
  HWY_ALIGN float tile[HWY_MAX_BYTES / sizeof(float)];
  for (int first = 0; first < n_pos; first += bs) {
    const float* block = keys.blocks[first / bs];
    const int valid = std::min(bs, n_pos - first);
    for (int g = 0; g < n_q; ++g) {
      const float* qg = q + g * head_dim;
      float* out = scores + int64_t(g) * n_pos + first;
      for (int s0 = 0; s0 < std::min(valid, vector_slots); s0 += lanes) {
        auto acc = hn::Zero(df);
        for (int64_t d = 0; d < head_dim; ++d) acc = hn::MulAdd(hn::Set(df, qg[d]), hn::LoadU(df, block + d * bs + s0), acc);
        hn::Store(hn::Mul(acc, hn::Set(df, scale)), df, tile);
        std::copy_n(tile, std::min(lanes, valid - s0), out + s0);  // slots past n_pos are not scores
      }
      for (int s = vector_slots; s < valid; ++s) {
        float acc = 0;
        for (int64_t d = 0; d < head_dim; ++d) acc = std::fma(qg[d], block[d * bs + s], acc);
        out[s] = acc * scale;
      }
    }
  }
}

// out_g = sum_p probs[g * n_pos + p] * v_p, accumulated position by position: per element
// the fused multiply-adds of axpy in position order (the same bits), but with a slice of
// out_g held in registers across all positions instead of loaded and stored for each.
void AttendValues(const float* probs, int n_q, int64_t head_dim, const KvRows& values, int n_pos, float* out) {
#if HWY_TARGET == HWY_SCALAR
  std::fill(out, out + n_q * head_dim, 0.0f);
  for (int p = 0; p < n_pos; ++p) {
    const float* v = KvRow(values, p);
    for (int g = 0; g < n_q; ++g) Axpy(probs[int64_t(g) * n_pos + p], v, out + g * head_dim, head_dim);
  }
#else
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  constexpr int64_t kSlice = 4;  // vectors of out_g per pass over the positions
  for (int g = 0; g < n_q; ++g) {
    const float* prob = probs + int64_t(g) * n_pos;
    float* o = out + g * head_dim;
    int64_t d = 0;
    for (; d + kSlice * lanes <= head_dim; d += kSlice * lanes) {
      auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
      for (int p = 0; p < n_pos; ++p) {
        const float* v = KvRow(values, p) + d;
        const auto w = hn::Set(df, prob[p]);
        a0 = hn::MulAdd(w, hn::LoadU(df, v), a0);
        a1 = hn::MulAdd(w, hn::LoadU(df, v + lanes), a1);
        a2 = hn::MulAdd(w, hn::LoadU(df, v + 2 * lanes), a2);
        a3 = hn::MulAdd(w, hn::LoadU(df, v + 3 * lanes), a3);
      }
      hn::StoreU(a0, df, o + d);
      hn::StoreU(a1, df, o + d + lanes);
      hn::StoreU(a2, df, o + d + 2 * lanes);
      hn::StoreU(a3, df, o + d + 3 * lanes);
    }
    for (; d + lanes <= head_dim; d += lanes) {
      auto a = hn::Zero(df);
      for (int p = 0; p < n_pos; ++p) a = hn::MulAdd(hn::Set(df, prob[p]), hn::LoadU(df, KvRow(values, p) + d), a);
      hn::StoreU(a, df, o + d);
    }
    for (; d < head_dim; ++d) {
      o[d] = 0.0f;
      for (int p = 0; p < n_pos; ++p) o[d] += prob[p] * KvRow(values, p)[d];
    }
  }
#endif
}

}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px {
HWY_EXPORT(SumOfSquares);
HWY_EXPORT(ExpShiftedAndSum);
HWY_EXPORT(SiluMul);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);
HWY_EXPORT(AttendScores);
HWY_EXPORT(AttendValues);

namespace {

// NORM rotates adjacent pairs (2i, 2i+1); NEOX rotates element i with element i + head_dim/2.
inline void rope_apply_pair(float* head, int64_t half, int64_t i, float c, float s,
                            RopeStyle style) {
  const int64_t a = style == RopeStyle::Norm ? 2 * i : i;
  const int64_t b = style == RopeStyle::Norm ? 2 * i + 1 : i + half;
  const float x0 = head[a], x1 = head[b];
  head[a] = x0 * c - x1 * s;
  head[b] = x0 * s + x1 * c;
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  const double sum_sq = HWY_DYNAMIC_DISPATCH(SumOfSquares)(x, n);
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
  if (weight) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * weight[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void rope_cos_sin(float pos, const float* freqs, int64_t n_pairs, float* cos_out, float* sin_out) {
  for (int64_t i = 0; i < n_pairs; ++i) {
    // In double: at positions of 1e5 a float angle would already be off by ~4e-3 rad.
    const double angle = double(pos) * double(freqs[i]);
    cos_out[i] = static_cast<float>(std::cos(angle));
    sin_out[i] = static_cast<float>(std::sin(angle));
  }
}

void rope_apply(float* head, int64_t head_dim, const float* cos, const float* sin, RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) rope_apply_pair(head, half, i, cos[i], sin[i], style);
}

void rope(float* head, int64_t head_dim, float pos, const float* freqs, RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    float c, s;
    rope_cos_sin(pos, freqs + i, 1, &c, &s);
    rope_apply_pair(head, half, i, c, s, style);
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(x, x + n, 1.0f / static_cast<float>(n));
    return;
  }
  const double sum = HWY_DYNAMIC_DISPATCH(ExpShiftedAndSum)(x, n, max);
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, out, n);
}

float dot(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }

void axpy(float alpha, const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Axpy)(alpha, x, y, n); }

void attend_kv_head(const float* q, int n_q, int64_t head_dim, float scale, const KeyBlocks& keys,
                    const KvRows& values, int n_pos, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendScores)(q, n_q, head_dim, scale, keys, n_pos, scores);
  for (int g = 0; g < n_q; ++g) softmax(scores + int64_t(g) * n_pos, n_pos);
  HWY_DYNAMIC_DISPATCH(AttendValues)(scores, n_q, head_dim, values, n_pos, out);
}

void add_in_place(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace px
#endif  // HWY_ONCE
