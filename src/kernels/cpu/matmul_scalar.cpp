#include "kernels/cpu/matmul_scalar.h"

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/quant.h"

namespace px::kernels::scalar {
namespace {

float weight_at(DType type, const uint8_t* row, int64_t i) {
  uint16_t h;
  switch (type) {
    case DType::F32: {
      float f;
      std::memcpy(&f, row + 4 * i, 4);
      return f;
    }
    case DType::F16: std::memcpy(&h, row + 2 * i, 2); return fp16_to_f32(h);
    default: std::memcpy(&h, row + 2 * i, 2); return bf16_to_f32(h);
  }
}

// Signed 8-bit weight quants of one 32-element block.
void block_quants(const BlockQ8_0& b, int* q) {
  for (int j = 0; j < kQK; ++j) q[j] = b.qs[j];
}
void block_quants(const BlockQ4_0& b, int* q) {
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = (b.qs[j] & 0xF) - 8;
    q[j + kQK / 2] = (b.qs[j] >> 4) - 8;
  }
}

template <typename Block>
float q8_dot(const Block* row, int64_t nb, const int8_t* xq, const float* xd) {
  float acc = 0;
  int q[kQK];
  for (int64_t b = 0; b < nb; ++b) {
    block_quants(row[b], q);
    int32_t isum = 0;
    for (int j = 0; j < kQK; ++j) isum += q[j] * xq[b * kQK + j];
    acc += (fp16_to_f32(row[b].d) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

// Unsigned quants, per-element scale and per-16-group correction weights of a super-block
// (see matmul_kquant.cpp for the algebra).
struct SuperBlock {
  int q[kQK_K];
  int scale[kQK_K];
  int corr_w[16];
  float d, corr_scale;
};

void decode(const BlockQ4_K& b, SuperBlock& s) {
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = b.scales[j] & 63;
      m[j] = b.scales[j + 4] & 63;
    } else {
      sc[j] = (b.scales[j + 4] & 0xF) | ((b.scales[j - 4] >> 6) << 4);
      m[j] = (b.scales[j + 4] >> 4) | ((b.scales[j] >> 6) << 4);
    }
  }
  for (int e = 0; e < kQK_K; ++e) {
    const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
    s.q[e] = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    s.scale[e] = sc[e / 32];
  }
  for (int g = 0; g < 16; ++g) s.corr_w[g] = m[g / 2];
  s.d = fp16_to_f32(b.d);
  s.corr_scale = fp16_to_f32(b.dmin);
}

void decode(const BlockQ6_K& b, SuperBlock& s) {
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t low_byte = b.ql[64 * h + 32 * (k & 1) + l];
    const int low = k < 2 ? (low_byte & 0xF) : (low_byte >> 4);
    s.q[e] = low | (((b.qh[32 * h + l] >> (2 * k)) & 3) << 4);
    s.scale[e] = b.scales[e / 16];
  }
  for (int g = 0; g < 16; ++g) s.corr_w[g] = 32 * b.scales[g];
  s.d = fp16_to_f32(b.d);
  s.corr_scale = s.d;
}

template <typename Block>
float kquant_dot(const Block* row, int64_t nb, const int8_t* xq, const float* xd,
                 const int16_t* sums16) {
  float acc = 0, corr = 0;
  SuperBlock s;
  for (int64_t b = 0; b < nb; ++b) {
    decode(row[b], s);
    int32_t isum = 0, c = 0;
    for (int e = 0; e < kQK_K; ++e) isum += s.scale[e] * s.q[e] * xq[b * kQK_K + e];
    for (int g = 0; g < 16; ++g) c += s.corr_w[g] * sums16[b * 16 + g];
    acc += (s.d * xd[b]) * static_cast<float>(isum);
    corr += (s.corr_scale * xd[b]) * static_cast<float>(c);
  }
  return acc - corr;
}

}  // namespace

void float_rows(DType type, const RowRange& rows, const float* x, int64_t t0, int64_t t1,
                float* y, int64_t y_stride) {
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const uint8_t* row = rows.data + r * rows.row_bytes;
    for (int64_t t = t0; t < t1; ++t) {
      float sum = 0;
      for (int64_t i = 0; i < rows.cols; ++i) sum += weight_at(type, row, i) * x[t * rows.cols + i];
      y[t * y_stride + r] = sum;
    }
  }
}

void q8_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
             int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const uint8_t* row = rows.data + r * rows.row_bytes;
    for (int64_t t = t0; t < t1; ++t) {
      y[t * y_stride + r] =
          type == DType::Q8_0
              ? q8_dot(reinterpret_cast<const BlockQ8_0*>(row), nb, acts.q(t), acts.scales(t))
              : q8_dot(reinterpret_cast<const BlockQ4_0*>(row), nb, acts.q(t), acts.scales(t));
    }
  }
}

void kquant_rows(DType type, const RowRange& rows, const QuantizedActivations& acts, int64_t t0,
                 int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = rows.cols / kQK_K;
  for (int64_t r = rows.r0; r < rows.r1; ++r) {
    const uint8_t* row = rows.data + r * rows.row_bytes;
    for (int64_t t = t0; t < t1; ++t) {
      y[t * y_stride + r] =
          type == DType::Q4_K
              ? kquant_dot(reinterpret_cast<const BlockQ4_K*>(row), nb, acts.q(t), acts.scales(t),
                           acts.sums16(t))
              : kquant_dot(reinterpret_cast<const BlockQ6_K*>(row), nb, acts.q(t), acts.scales(t),
                           acts.sums16(t));
    }
  }
}

void quantize_activation_row(const float* x, int64_t cols, int64_t block, int8_t* q,
                             float* scales, int16_t* sums16) {
  for (int64_t b = 0; b < cols; b += block) {
    float amax = 0;
    for (int64_t i = b; i < b + block; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    scales[b / block] = scale;
    for (int64_t i = b; i < b + block; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inv));
  }
  for (int64_t g = 0; g < cols / 16; ++g) {
    int sum = 0;
    for (int k = 0; k < 16; ++k) sum += q[g * 16 + k];
    sums16[g] = static_cast<int16_t>(sum);
  }
}

}  // namespace px::kernels::scalar
