// Repacking Q8_0 / Q4_0 matrices into 16-row groups, and the plain C++ kernel over that
// layout (see interleaved.h).
#include "kernels/cpu/interleaved.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_config.h"
// Must follow simd_config.h: HWY_TARGETS is the kernels' target set.
#include <hwy/targets.h>

namespace px::kernels {
namespace {

constexpr int64_t kScaleBytes = kInterleaveRows * 2;

int64_t quant_bytes(DType type) { return type == DType::Q8_0 ? kQK * kInterleaveRows : kQK / 2 * kInterleaveRows; }

bool is_half(DType type) { return type == DType::F16 || type == DType::BF16; }

void check_type(DType type) {
  if (type != DType::Q8_0 && type != DType::Q4_0 && !is_half(type)) {
    fail("only Q8_0, Q4_0, F16 and BF16 matrices can be interleaved, not {}", dtype_name(type));
  }
}

float half_value(DType type, uint16_t bits) { return type == DType::F16 ? fp16_to_f32(bits) : bf16_to_f32(bits); }

}  // namespace

bool interleave_pays_off(DType type) {
  if (type != DType::Q8_0 && type != DType::Q4_0 && !is_half(type)) return false;
  const char* env = std::getenv("PX_REPACK");
  if (env && std::strcmp(env, "0") == 0) return false;
  // Quantized groups have a kernel for AVX-512 VNNI; half-precision ones also for AVX2.
  const int64_t kernels = is_half(type) ? (HWY_AVX3_DL | HWY_AVX3 | HWY_AVX2) : HWY_AVX3_DL;
  return (hwy::SupportedTargets() & HWY_TARGETS & kernels) != 0;
}

size_t interleaved_group_bytes(DType type, int64_t cols) {
  check_type(type);
  if (is_half(type)) return size_t(cols) * kInterleaveRows * 2;
  return size_t(cols / kQK) * size_t(kScaleBytes + quant_bytes(type));
}

size_t interleaved_bytes(DType type, int64_t rows, int64_t cols) {
  const int64_t groups = (rows + kInterleaveRows - 1) / kInterleaveRows;
  return size_t(groups) * interleaved_group_bytes(type, cols);
}

void interleave_rows(DType type, const void* src, int64_t rows, int64_t cols, void* dst) {
  check_type(type);
  if (is_half(type)) {
    // Column c of group g: the 16 rows' values side by side; padding rows are +0.
    auto* out = static_cast<uint16_t*>(dst);
    const auto* in = static_cast<const uint16_t*>(src);
    std::memset(out, 0, interleaved_bytes(type, rows, cols));
    for (int64_t r = 0; r < rows; ++r) {
      uint16_t* group = out + (r / kInterleaveRows) * cols * kInterleaveRows + r % kInterleaveRows;
      for (int64_t c = 0; c < cols; ++c) group[c * kInterleaveRows] = in[r * cols + c];
    }
    return;
  }
  if (cols % kQK != 0) fail("interleave_rows: {} columns are not a whole number of blocks", cols);
  const int64_t nb = cols / kQK;
  const size_t src_row_bytes = row_bytes(type, cols);
  const int64_t groups = (rows + kInterleaveRows - 1) / kInterleaveRows;
  auto* out = static_cast<uint8_t*>(dst);
  std::memset(out, 0, interleaved_bytes(type, rows, cols));  // padding rows: zero scale, zero quants
  const auto* in = static_cast<const uint8_t*>(src);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* block = out;
      auto* scales = reinterpret_cast<uint16_t*>(block);
      uint8_t* quants = block + kScaleBytes;
      for (int64_t r = 0; r < kInterleaveRows && g * kInterleaveRows + r < rows; ++r) {
        const uint8_t* row = in + size_t(g * kInterleaveRows + r) * src_row_bytes;
        if (type == DType::Q8_0) {
          const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
          scales[r] = blk.d;
          for (int j = 0; j < kQK; ++j) {
            quants[(j / 4) * 64 + r * 4 + j % 4] = static_cast<uint8_t>(blk.qs[j] + 128);
          }
        } else {
          const auto& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
          scales[r] = blk.d;
          for (int j = 0; j < kQK / 2; ++j) quants[(j / 4) * 64 + r * 4 + j % 4] = blk.qs[j];
        }
      }
      out += kScaleBytes + quant_bytes(type);
    }
  }
}

namespace scalar {

void interleaved_half_rows(const GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                           int64_t y_stride) {
  const int64_t cols = groups.cols;
  for (int64_t g = groups.g0; g < groups.g1; ++g) {
    const auto* group = reinterpret_cast<const uint16_t*>(groups.data) + g * cols * kInterleaveRows;
    for (int64_t r = 0; r < kInterleaveRows && g * kInterleaveRows + r < groups.rows; ++r) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* xt = x + t * cols;
        float partial[kHalfPartials] = {};
        for (int64_t c = 0; c < cols; ++c) {
          const float w = half_value(groups.type, group[c * kInterleaveRows + r]);
          partial[c % kHalfPartials] = std::fma(w, xt[c], partial[c % kHalfPartials]);
        }
        y[t * y_stride + g * kInterleaveRows + r] = (partial[0] + partial[1]) + (partial[2] + partial[3]);
      }
    }
  }
}

void interleaved_rows(const GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                      int64_t t1, float* y, int64_t y_stride) {
  const int64_t nb = groups.cols / kQK;
  const size_t block_bytes = size_t(kScaleBytes + quant_bytes(groups.type));
  const bool q8 = groups.type == DType::Q8_0;
  for (int64_t g = groups.g0; g < groups.g1; ++g) {
    const uint8_t* group = groups.data + size_t(g) * nb * block_bytes;
    for (int64_t r = 0; r < kInterleaveRows && g * kInterleaveRows + r < groups.rows; ++r) {
      for (int64_t t = t0; t < t1; ++t) {
        const int8_t* xq = acts.q(t);
        const float* xd = acts.scales(t);
        float acc = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* block = group + size_t(b) * block_bytes;
          uint16_t d;
          std::memcpy(&d, block + 2 * r, 2);
          const uint8_t* quants = block + kScaleBytes;
          int32_t isum = 0;
          for (int j = 0; j < kQK; ++j) {
            int q;
            if (q8) {
              q = int(quants[(j / 4) * 64 + r * 4 + j % 4]) - 128;
            } else {
              const int k = j % 16;
              const uint8_t byte = quants[(k / 4) * 64 + r * 4 + k % 4];
              q = (j < 16 ? byte & 0xF : byte >> 4) - 8;
            }
            isum += q * xq[b * kQK + j];
          }
          // Same operations as the SIMD kernel: scale product in f32, then one fused multiply-add.
          acc = std::fma(static_cast<float>(isum), fp16_to_f32(d) * xd[b], acc);
        }
        y[t * y_stride + g * kInterleaveRows + r] = acc;
      }
    }
  }
}

}  // namespace scalar
}  // namespace px::kernels
