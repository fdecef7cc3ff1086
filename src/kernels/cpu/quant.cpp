// Row (de)quantization for the GGUF block types we compute with. The layouts follow ggml's
// block definitions byte for byte (see quant.h); the quantizers are our own, simpler than
// ggml's iterative searches for the K-quants, but they produce valid blocks any GGUF reader
// decodes the same way.
#include "kernels/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"

namespace px {
namespace {

// ---------------------------------------------------------------- helpers

int nearest_int(float x) { return static_cast<int>(std::nearbyint(x)); }

// Splits the 12 packed bytes of a Q4_K block into 8 six-bit scales and 8 six-bit mins.
// Bytes 0-3 hold scales 0-3 (low 6 bits) and bytes 4-7 mins 0-3; the top two bits of
// bytes 0-7 plus the nibbles of bytes 8-11 hold scales and mins 4-7.
void unpack_q4_k_scales(const uint8_t* packed, uint8_t* scales, uint8_t* mins) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = packed[j] & 63;
      mins[j] = packed[j + 4] & 63;
    } else {
      scales[j] = (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4);
      mins[j] = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
  }
}

void pack_q4_k_scales(const uint8_t* scales, const uint8_t* mins, uint8_t* packed) {
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      packed[j] |= scales[j] & 63;
      packed[j + 4] |= mins[j] & 63;
    } else {
      packed[j + 4] |= (scales[j] & 0xF) | ((mins[j] & 0xF) << 4);
      packed[j - 4] |= (scales[j] >> 4) << 6;
      packed[j] |= (mins[j] >> 4) << 6;
    }
  }
}

// ---------------------------------------------------------------- dequantize

void dequantize_q8_0(const BlockQ8_0* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(blocks[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = d * blocks[i].qs[j];
  }
}

void dequantize_q4_0(const BlockQ4_0* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(blocks[i].d);
    float* out = y + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      out[j] = d * ((blocks[i].qs[j] & 0xF) - 8);
      out[j + kQK / 2] = d * ((blocks[i].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const BlockQ4_K& b = blocks[i];
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    uint8_t sc[8], m[8];
    unpack_q4_k_scales(b.scales, sc, m);
    float* out = y + i * kQK_K;
    // Each 64-element chunk uses 32 bytes: low nibbles are its first 32 elements.
    for (int chunk = 0; chunk < 4; ++chunk) {
      const uint8_t* q = b.qs + chunk * 32;
      const int s0 = 2 * chunk, s1 = 2 * chunk + 1;
      const float d0 = d * sc[s0], m0 = dmin * m[s0];
      const float d1 = d * sc[s1], m1 = dmin * m[s1];
      for (int l = 0; l < 32; ++l) {
        out[chunk * 64 + l] = d0 * (q[l] & 0xF) - m0;
        out[chunk * 64 + 32 + l] = d1 * (q[l] >> 4) - m1;
      }
    }
  }
}

// The 6-bit quant of element e (0..255) of a Q6_K block, still offset by +32.
inline int q6_k_quant(const BlockQ6_K& b, int e) {
  const int half = e / 128, r = e % 128;
  const int quarter = r / 32, l = r % 32;
  const uint8_t* ql = b.ql + half * 64;
  const uint8_t* qh = b.qh + half * 32;
  const int low = (quarter & 1) ? ql[l + 32] : ql[l];
  const int low4 = (quarter < 2) ? (low & 0xF) : (low >> 4);
  const int high2 = (qh[l] >> (2 * quarter)) & 3;
  return low4 | (high2 << 4);
}

void dequantize_q6_k(const BlockQ6_K* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const BlockQ6_K& b = blocks[i];
    const float d = fp16_to_f32(b.d);
    for (int e = 0; e < kQK_K; ++e) {
      // Element e belongs to 16-element group e / 16 and uses that group's scale.
      y[i * kQK_K + e] = d * b.scales[e / 16] * (q6_k_quant(b, e) - 32);
    }
  }
}

// ---------------------------------------------------------------- quantize

void quantize_q8_0(const float* x, BlockQ8_0* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* v = x + i * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) blocks[i].qs[j] = static_cast<int8_t>(nearest_int(v[j] * id));
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* v = x + i * kQK;
    // The value of largest magnitude, sign kept, maps to quant 0 (= -8) exactly.
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(v[j]) > amax) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(v[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(v[j + kQK / 2] * id + 8.5f));
      blocks[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Q4_K: each 32-element sub-block j gets x ~ step_j * q - offset_j with q in 0..15, where
// offset_j = -min(0, min x) so the 6-bit "min" is non-negative, as the format requires.
// step_j and offset_j are then expressed as 6-bit multiples of the super-block's d and dmin.
void quantize_q4_k(const float* x, BlockQ4_K* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* v = x + i * kQK_K;
    float step[8], offset[8];
    float max_step = 0, max_offset = 0;
    for (int j = 0; j < 8; ++j) {
      float lo = 0, hi = -INFINITY;
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, v[j * 32 + l]);
        hi = std::max(hi, v[j * 32 + l]);
      }
      step[j] = (hi - lo) / 15.0f;
      offset[j] = -lo;
      max_step = std::max(max_step, step[j]);
      max_offset = std::max(max_offset, offset[j]);
    }
    BlockQ4_K& b = blocks[i];
    b.d = f32_to_fp16(max_step / 63.0f);
    b.dmin = f32_to_fp16(max_offset / 63.0f);
    const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(d > 0 ? std::clamp(nearest_int(step[j] / d), 0, 63) : 0);
      m[j] = static_cast<uint8_t>(dmin > 0 ? std::clamp(nearest_int(offset[j] / dmin), 0, 63) : 0);
    }
    pack_q4_k_scales(sc, m, b.scales);
    uint8_t q[kQK_K];
    for (int j = 0; j < 8; ++j) {
      // Quantize against the step and offset the decoder will actually use.
      const float s = d * sc[j], o = dmin * m[j];
      const float is = s > 0 ? 1.0f / s : 0.0f;
      for (int l = 0; l < 32; ++l) {
        q[j * 32 + l] = static_cast<uint8_t>(std::clamp(nearest_int((v[j * 32 + l] + o) * is), 0, 15));
      }
    }
    for (int chunk = 0; chunk < 4; ++chunk) {
      for (int l = 0; l < 32; ++l) {
        b.qs[chunk * 32 + l] =
            static_cast<uint8_t>(q[chunk * 64 + l] | (q[chunk * 64 + 32 + l] << 4));
      }
    }
  }
}

// Q6_K: each 16-element group gets a signed step so that its largest-magnitude value maps
// to -32 exactly; the steps are stored as int8 multiples of the super-block's d.
void quantize_q6_k(const float* x, BlockQ6_K* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* v = x + i * kQK_K;
    float step[16];
    float max_abs_step = 0, max_step = 0;
    for (int g = 0; g < 16; ++g) {
      float amax = 0, max = 0;
      for (int l = 0; l < 16; ++l) {
        if (std::fabs(v[g * 16 + l]) > amax) {
          amax = std::fabs(v[g * 16 + l]);
          max = v[g * 16 + l];
        }
      }
      step[g] = max / -32.0f;
      if (std::fabs(step[g]) > max_abs_step) {
        max_abs_step = std::fabs(step[g]);
        max_step = step[g];
      }
    }
    BlockQ6_K& b = blocks[i];
    // The largest step maps to scale -128... +127; use -128 when it is negative, like ggml.
    const float d_exact = max_step / -128.0f;
    b.d = f32_to_fp16(d_exact);
    const float d = fp16_to_f32(b.d);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int g = 0; g < 16; ++g) {
      b.scales[g] = static_cast<int8_t>(std::clamp(nearest_int(step[g] * id), -128, 127));
    }
    uint8_t q[kQK_K];
    for (int e = 0; e < kQK_K; ++e) {
      const float s = d * b.scales[e / 16];
      const int qi = s != 0 ? nearest_int(v[e] / s) : 0;
      q[e] = static_cast<uint8_t>(std::clamp(qi, -32, 31) + 32);
    }
    std::memset(b.ql, 0, sizeof b.ql);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, r = e % 128;
      const int quarter = r / 32, l = r % 32;
      uint8_t& low = b.ql[half * 64 + ((quarter & 1) ? l + 32 : l)];
      low |= static_cast<uint8_t>((q[e] & 0xF) << ((quarter < 2) ? 0 : 4));
      b.qh[half * 32 + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * quarter));
    }
  }
}

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  row_bytes(type, n);  // validates n against the block size
  const int64_t nb = n / dtype_info(type).block_size;
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
      return;
    }
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
    case DType::Q8_0: return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case DType::Q4_0: return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case DType::Q4_K: return dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case DType::Q6_K: return dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
    default:
      fail("cannot dequantize tensor type {}: supported are F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K",
           dtype_name(type));
  }
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  row_bytes(type, n);
  const int64_t nb = n / dtype_info(type).block_size;
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0: return quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case DType::Q4_0: return quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), nb);
    case DType::Q4_K: return quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
    case DType::Q6_K: return quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
    default:
      fail("cannot quantize to tensor type {}: supported are F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K",
           dtype_name(type));
  }
}

}  // namespace px
