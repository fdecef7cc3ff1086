// Row-wise ops of the transformer in plain f32 (they are a small share of the work next to
// the matrix products). Accumulations that feed a division use double.
#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace px {
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
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += double(x[i]) * double(x[i]);
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
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_in_place(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace px
