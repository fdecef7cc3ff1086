// The kernels over 16-row interleaved matrices (layout in interleaved.h). Q8_0 / Q4_0, for
// AVX-512 VNNI: one vpdpbusd multiplies 4 elements of 16 rows by the same 4 activation bytes
// (broadcast), so a 32-element block of 16 rows is 8 dot products, one scale conversion and
// one fused multiply-add per token. F16 / BF16, for AVX-512 and (in two 8-row halves) AVX2: a
// column is one widening load and one fused multiply-add per token. Other targets run the
// plain C++ versions (interleave_pays_off() only repacks where a kernel exists).
#include <algorithm>

#include "kernels/cpu/activations.h"
#include "kernels/cpu/interleaved.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_interleaved.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
// Quantized groups need VNNI (AVX3_DL); half-precision groups run in 256-bit halves here.
void InterleavedRows(const kernels::GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                     int64_t t1, float* y, int64_t y_stride) {
  kernels::scalar::interleaved_rows(groups, acts, t0, t1, y, y_stride);
}

// 8 of a column's 16 half-precision weights, widened to f32.
template <bool kF16>
HWY_INLINE __m256 LoadHalfColumn(const uint16_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kF16) return _mm256_cvtph_ps(raw);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}

// One group of 16 rows and one token: rows 0-7 and 8-15 in two registers, kHalfPartials
// accumulators each (the same arithmetic as the AVX3_DL kernel and the plain C++ one).
template <bool kF16>
void HalfGroups(const kernels::GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                int64_t y_stride) {
  constexpr int P = kernels::kHalfPartials;
  static_assert(P == 4, "the final sum is written for 4 partials");
  const int64_t cols = groups.cols;
  for (int64_t g = groups.g0; g < groups.g1; ++g) {
    const auto* group = reinterpret_cast<const uint16_t*>(groups.data) + g * cols * kernels::kInterleaveRows;
    const int64_t r0 = g * kernels::kInterleaveRows;
    const int64_t valid = std::min<int64_t>(kernels::kInterleaveRows, groups.rows - r0);
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * cols;
      __m256 lo[P], hi[P];
      for (int j = 0; j < P; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
      int64_t c = 0;
      for (; c + P <= cols; c += P) {
#pragma GCC unroll 4
        for (int j = 0; j < P; ++j) {
          const uint16_t* column = group + (c + j) * kernels::kInterleaveRows;
          const __m256 xv = _mm256_set1_ps(xt[c + j]);
          lo[j] = _mm256_fmadd_ps(LoadHalfColumn<kF16>(column), xv, lo[j]);
          hi[j] = _mm256_fmadd_ps(LoadHalfColumn<kF16>(column + 8), xv, hi[j]);
        }
      }
      for (int j = 0; c < cols; ++c, ++j) {
        const uint16_t* column = group + c * kernels::kInterleaveRows;
        const __m256 xv = _mm256_set1_ps(xt[c]);
        lo[j] = _mm256_fmadd_ps(LoadHalfColumn<kF16>(column), xv, lo[j]);
        hi[j] = _mm256_fmadd_ps(LoadHalfColumn<kF16>(column + 8), xv, hi[j]);
      }
      alignas(32) float sums[kernels::kInterleaveRows];
      _mm256_store_ps(sums, _mm256_add_ps(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(lo[2], lo[3])));
      _mm256_store_ps(sums + 8, _mm256_add_ps(_mm256_add_ps(hi[0], hi[1]), _mm256_add_ps(hi[2], hi[3])));
      std::copy_n(sums, valid, y + t * y_stride + r0);
    }
  }
}

void InterleavedHalfRows(const kernels::GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                         int64_t y_stride) {
  if (groups.type == DType::F16) return HalfGroups<true>(groups, x, t0, t1, y, y_stride);
  HalfGroups<false>(groups, x, t0, t1, y, y_stride);
}
#elif HWY_TARGET != HWY_AVX3_DL
void InterleavedRows(const kernels::GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                     int64_t t1, float* y, int64_t y_stride) {
  kernels::scalar::interleaved_rows(groups, acts, t0, t1, y, y_stride);
}
void InterleavedHalfRows(const kernels::GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                         int64_t y_stride) {
  kernels::scalar::interleaved_half_rows(groups, x, t0, t1, y, y_stride);
}
#else
// Highway's AVX3_DL attributes name AVX-VNNI (VEX) but not AVX512-VNNI, which this target
// requires of the CPU anyway; enabled here until the matching pop in HWY_AFTER_NAMESPACE.
#pragma GCC target("avx512vnni")

constexpr int64_t kScaleBytes = kernels::kInterleaveRows * 2;
constexpr int64_t kPrefetchAhead = 4096;

HWY_INLINE __m512i Broadcast4(const int8_t* x) {
  int32_t v;
  __builtin_memcpy(&v, x, 4);
  return _mm512_set1_epi32(v);
}

// One group of 16 rows times T tokens starting at t.
template <int T, bool kQ8>
HWY_INLINE void GroupTile(const uint8_t* group, int64_t nb, const QuantizedActivations& acts, int64_t t,
                          float* y, int64_t y_stride, __mmask16 rows_mask) {
  constexpr int64_t kBlockBytes = kScaleBytes + (kQ8 ? kQK : kQK / 2) * kernels::kInterleaveRows;
  constexpr int kOffset = kQ8 ? 128 : 8;  // stored quant = value + offset
  __m512 acc[T];
  const int8_t* xq[T];
  const float* xd[T];
  const int16_t* xs[T];
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) {
    acc[i] = _mm512_setzero_ps();
    xq[i] = acts.q(t + i);
    xd[i] = acts.scales(t + i);
    xs[i] = acts.sums16(t + i);
  }
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* block = group + b * kBlockBytes;
    if constexpr (T == 1) {
#pragma GCC unroll 16
      for (int64_t off = 0; off < kBlockBytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchAhead + off), _MM_HINT_T0);
    }
    const __m512 scales = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
    const uint8_t* quants = block + kScaleBytes;
    // w[k]: elements 4k..4k+3 of every row.
    __m512i w[8];
    if constexpr (kQ8) {
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) w[k] = _mm512_loadu_si512(quants + 64 * k);
    } else {
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) {
        const __m512i packed = _mm512_loadu_si512(quants + 64 * m);
        w[m] = _mm512_and_si512(packed, low_nibbles);
        w[4 + m] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) {
      const int8_t* x = xq[i] + b * kQK;
      __m512i isum = _mm512_set1_epi32(-kOffset * (xs[i][2 * b] + xs[i][2 * b + 1]));
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) isum = _mm512_dpbusd_epi32(isum, w[k], Broadcast4(x + 4 * k));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(scales, _mm512_set1_ps(xd[i][b])),
                               acc[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) _mm512_mask_storeu_ps(y + (t + i) * y_stride, rows_mask, acc[i]);
}

template <bool kQ8>
void Groups(const kernels::GroupRange& groups, const QuantizedActivations& acts, int64_t t0, int64_t t1,
            float* y, int64_t y_stride) {
  const int64_t nb = groups.cols / kQK;
  const size_t group_bytes = kernels::interleaved_group_bytes(groups.type, groups.cols);
  for (int64_t g = groups.g0; g < groups.g1; ++g) {
    const uint8_t* group = groups.data + size_t(g) * group_bytes;
    const int64_t r0 = g * kernels::kInterleaveRows;
    const int64_t valid = std::min<int64_t>(kernels::kInterleaveRows, groups.rows - r0);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    float* out = y + r0;
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) GroupTile<4, kQ8>(group, nb, acts, t, out, y_stride, mask);
    for (; t < t1; ++t) GroupTile<1, kQ8>(group, nb, acts, t, out, y_stride, mask);
  }
}

void InterleavedRows(const kernels::GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                     int64_t t1, float* y, int64_t y_stride) {
  if (groups.type == DType::Q8_0) return Groups<true>(groups, acts, t0, t1, y, y_stride);
  Groups<false>(groups, acts, t0, t1, y, y_stride);
}

// 16 half-precision weights of one column, widened to f32.
template <bool kF16>
HWY_INLINE __m512 LoadColumn(const uint16_t* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (kF16) return _mm512_cvtph_ps(raw);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));  // bf16: the top half of f32
}

// One group of 16 half-precision rows times T tokens starting at t: per token kHalfPartials
// accumulators, column c feeding partial c mod kHalfPartials.
template <int T, bool kF16>
HWY_INLINE void HalfGroupTile(const uint16_t* group, int64_t cols, const float* x, int64_t t, float* y,
                              int64_t y_stride, __mmask16 rows_mask) {
  constexpr int P = kernels::kHalfPartials;
  __m512 acc[T][P];
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < P; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const float* xt = x + t * cols;
  int64_t c = 0;
  for (; c + P <= cols; c += P) {
#pragma GCC unroll 4
    for (int j = 0; j < P; ++j) {
      const __m512 w = LoadColumn<kF16>(group + (c + j) * kernels::kInterleaveRows);
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) acc[i][j] = _mm512_fmadd_ps(w, _mm512_set1_ps(xt[i * cols + c + j]), acc[i][j]);
    }
  }
  for (int j = 0; c < cols; ++c, ++j) {
    const __m512 w = LoadColumn<kF16>(group + c * kernels::kInterleaveRows);
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) acc[i][j] = _mm512_fmadd_ps(w, _mm512_set1_ps(xt[i * cols + c]), acc[i][j]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3]));
    _mm512_mask_storeu_ps(y + (t + i) * y_stride, rows_mask, sum);
  }
}

template <bool kF16>
void HalfGroups(const kernels::GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                int64_t y_stride) {
  static_assert(kernels::kHalfPartials == 4, "the final sum is written for 4 partials");
  const int64_t cols = groups.cols;
  for (int64_t g = groups.g0; g < groups.g1; ++g) {
    const auto* group = reinterpret_cast<const uint16_t*>(groups.data) + g * cols * kernels::kInterleaveRows;
    const int64_t r0 = g * kernels::kInterleaveRows;
    const int64_t valid = std::min<int64_t>(kernels::kInterleaveRows, groups.rows - r0);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) HalfGroupTile<4, kF16>(group, cols, x, t, y + r0, y_stride, mask);
    for (; t < t1; ++t) HalfGroupTile<1, kF16>(group, cols, x, t, y + r0, y_stride, mask);
  }
}

void InterleavedHalfRows(const kernels::GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                         int64_t y_stride) {
  if (groups.type == DType::F16) return HalfGroups<true>(groups, x, t0, t1, y, y_stride);
  HalfGroups<false>(groups, x, t0, t1, y, y_stride);
}

#endif  // targets
}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px::kernels {
HWY_EXPORT(InterleavedRows);
HWY_EXPORT(InterleavedHalfRows);

void interleaved_rows(const GroupRange& groups, const QuantizedActivations& acts, int64_t t0, int64_t t1,
                      float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(InterleavedRows)(groups, acts, t0, t1, y, y_stride);
}

void interleaved_half_rows(const GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                           int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(InterleavedHalfRows)(groups, x, t0, t1, y, y_stride);
}

}  // namespace px::kernels
#endif  // HWY_ONCE
