#pragma once
// Plain double-precision references for the CPU kernels, written straight from the GGUF
// block layout descriptions and independently of src/kernels (tests compare the two).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"

namespace px::ref {

// Deterministic data: xorshift64* and Box-Muller, the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  std::vector<float> normals(int64_t n, double scale = 1.0) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<float>(normal() * scale);
    return v;
  }

 private:
  uint64_t state_;
};

// IEEE half to double from the definition: sign, 5-bit exponent (bias 15), 10-bit mantissa.
inline double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 31;
  const int mantissa = h & 1023;
  if (exponent == 0) return sign * std::ldexp(double(mantissa), -24);
  if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
  return sign * std::ldexp(double(1024 + mantissa), exponent - 25);
}

inline double bf16_value(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t read_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

// Dequantizes n elements of a row of `type` stored at `bytes` (little-endian GGUF layout).
inline std::vector<double> dequantize(DType type, const uint8_t* bytes, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  switch (type) {
    case DType::F32:
      for (int64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, bytes + 4 * i, 4);
        out[i] = f;
      }
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = half_value(read_u16(bytes + 2 * i));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_value(read_u16(bytes + 2 * i));
      break;
    case DType::Q8_0:  // 34 bytes: fp16 d, then 32 int8 quants; x = d * q
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* block = bytes + (i / 32) * 34;
        out[i] = half_value(read_u16(block)) * int8_t(block[2 + i % 32]);
      }
      break;
    case DType::Q4_0:  // 18 bytes: fp16 d, 16 bytes; j < 16 low nibble of byte j, else high of j-16
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* block = bytes + (i / 32) * 18;
        const int j = i % 32;
        const int q = j < 16 ? (block[2 + j] & 15) : (block[2 + j - 16] >> 4);
        out[i] = half_value(read_u16(block)) * (q - 8);
      }
      break;
    case DType::Q4_K:  // 144 bytes: d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* block = bytes + (i / 256) * 144;
        const int e = i % 256;
        const int sub = e / 32;  // sub-block 0..7
        const uint8_t* s = block + 4;
        int scale, min;
        if (sub < 4) {
          scale = s[sub] & 63;
          min = s[sub + 4] & 63;
        } else {
          scale = (s[sub + 4] & 15) + 16 * (s[sub - 4] >> 6);
          min = (s[sub + 4] >> 4) + 16 * (s[sub] >> 6);
        }
        // 64-element chunk c holds its elements in bytes 32c..32c+31: first half low nibbles.
        const int chunk = e / 64, in_chunk = e % 64;
        const uint8_t byte = block[16 + 32 * chunk + in_chunk % 32];
        const int q = in_chunk < 32 ? (byte & 15) : (byte >> 4);
        out[i] = half_value(read_u16(block)) * scale * q - half_value(read_u16(block + 2)) * min;
      }
      break;
    case DType::Q6_K:  // 210 bytes: ql[128], qh[64], int8 scales[16], fp16 d
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* block = bytes + (i / 256) * 210;
        const int e = i % 256;
        // Each 128-element half uses 64 ql bytes and 32 qh bytes. Within a half, element
        // 32k + l (k = 0..3) takes: low 4 bits from ql[l] (k=0,2) or ql[l+32] (k=1,3), the
        // low nibble for k<2 and the high for k>=2; high 2 bits from qh[l] at bit 2k.
        const int half = e / 128, k = (e % 128) / 32, l = e % 32;
        const uint8_t* ql = block + 64 * half;
        const uint8_t* qh = block + 128 + 32 * half;
        const uint8_t low_byte = ql[l + 32 * (k % 2)];
        const int low = k < 2 ? (low_byte & 15) : (low_byte >> 4);
        const int high = (qh[l] >> (2 * k)) & 3;
        const int scale = int8_t(block[192 + e / 16]);
        out[i] = half_value(read_u16(block + 208)) * scale * ((low | (high << 4)) - 32);
      }
      break;
    default:
      break;
  }
  return out;
}

inline double dot(const std::vector<double>& w, const float* x) {
  double sum = 0;
  for (size_t i = 0; i < w.size(); ++i) sum += w[i] * double(x[i]);
  return sum;
}

inline double abs_dot(const std::vector<double>& w, const float* x) {
  double sum = 0;
  for (size_t i = 0; i < w.size(); ++i) sum += std::fabs(w[i] * double(x[i]));
  return sum;
}

// Worst-case error of a dot product when the activations x are first rounded to int8
// blocks of `block` elements with step amax/127 (the kernels' quantized path): each element
// moves by at most half a step.
inline double activation_rounding_bound(const std::vector<double>& w, const float* x,
                                        int64_t block) {
  double bound = 0;
  for (size_t b = 0; b < w.size(); b += block) {
    double amax = 0, wsum = 0;
    for (size_t i = b; i < b + block && i < w.size(); ++i) {
      amax = std::fmax(amax, std::fabs(double(x[i])));
      wsum += std::fabs(w[i]);
    }
    bound += wsum * amax / 127.0 * 0.5;
  }
  return bound;
}

// ---------------------------------------------------------------- ops

inline std::vector<double> rms_norm(const float* x, const float* weight, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  std::vector<double> y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (weight ? double(weight[i]) : 1.0);
  return y;
}

// neox: pairs (i, i + d/2); otherwise (2i, 2i+1).
inline std::vector<double> rope(const float* head, int64_t d, double pos, const float* freqs,
                                bool neox) {
  std::vector<double> y(head, head + d);
  for (int64_t i = 0; i < d / 2; ++i) {
    const int64_t a = neox ? i : 2 * i, b = neox ? i + d / 2 : 2 * i + 1;
    const double angle = pos * double(freqs[i]);
    y[a] = head[a] * std::cos(angle) - head[b] * std::sin(angle);
    y[b] = head[a] * std::sin(angle) + head[b] * std::cos(angle);
  }
  return y;
}

inline std::vector<double> softmax(const float* x, int64_t n) {
  double max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  std::vector<double> y(n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += y[i] = std::exp(double(x[i]) - max);
  for (auto& v : y) v /= sum;
  return y;
}

}  // namespace px::ref
