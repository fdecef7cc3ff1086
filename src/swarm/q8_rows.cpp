#include "swarm/q8_rows.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"

namespace px::swarm {
namespace {

int blocks_of(int width) { return (width + kQ8BlockValues - 1) / kQ8BlockValues; }

constexpr float kMaxAbs = 127.0f * 65504.0f;  // 127 steps of the largest finite f16 scale

}  // namespace

size_t q8_row_bytes(int width) { return size_t(blocks_of(width)) * sizeof(uint16_t) + size_t(width); }

void q8_encode(std::span<const float> rows, int width, std::string& out) {
  if (width <= 0 || rows.size() % size_t(width) != 0)
    fail("q8: {} values are not whole rows of {}", rows.size(), width);
  const size_t n = rows.size() / size_t(width);
  out.resize(n * q8_row_bytes(width));
  char* dst = out.data();
  for (size_t r = 0; r < n; ++r) {
    const float* row = rows.data() + r * size_t(width);
    for (int begin = 0; begin < width; begin += kQ8BlockValues) {
      const int count = std::min(kQ8BlockValues, width - begin);
      // Saturating: the scale is at most f16's largest (values beyond 127 x 65504 clamp), an
      // infinity is the block's extreme and a NaN is 0. Nothing honest sends either; this keeps
      // every frame this node encodes one its peers accept.
      float amax = 0;
      for (int i = 0; i < count; ++i) {
        const float v = row[begin + i];
        if (!std::isnan(v)) amax = std::max(amax, std::min(std::abs(v), kMaxAbs));
      }
      const uint16_t scale_bits = f32_to_fp16(amax / 127.0f);
      const float scale = fp16_to_f32(scale_bits);
      std::memcpy(dst, &scale_bits, sizeof scale_bits);
      dst += sizeof scale_bits;
      for (int i = 0; i < count; ++i) {
        // The rounded scale divides, so that decoding multiplies back by exactly it.
        const float v = row[begin + i];
        const float q = scale > 0 && !std::isnan(v) ? std::clamp(std::nearbyint(v / scale), -127.0f, 127.0f) : 0.0f;
        *dst++ = char(int8_t(q));
      }
    }
  }
}

void q8_decode(std::string_view bytes, int width, std::vector<float>& out) {
  if (width <= 0) fail("q8: width {}", width);
  const size_t row_bytes = q8_row_bytes(width);
  if (bytes.size() % row_bytes != 0) fail("q8: {} bytes are not whole rows of {} bytes", bytes.size(), row_bytes);
  const size_t n = bytes.size() / row_bytes;
  out.resize(n * size_t(width));
  const char* src = bytes.data();
  float* dst = out.data();
  for (size_t r = 0; r < n; ++r) {
    for (int begin = 0; begin < width; begin += kQ8BlockValues) {
      uint16_t scale_bits;
      std::memcpy(&scale_bits, src, sizeof scale_bits);
      src += sizeof scale_bits;
      const float scale = fp16_to_f32(scale_bits);
      if (!std::isfinite(scale) || scale < 0 || std::signbit(scale))
        fail("q8: row {} block {} has scale {} (a scale is finite and not negative)", r, begin / kQ8BlockValues, scale);
      const int count = std::min(kQ8BlockValues, width - begin);
      for (int i = 0; i < count; ++i) *dst++ = float(int8_t(*src++)) * scale;
    }
  }
}

std::vector<float> q8_round_trip(std::span<const float> rows, int width) {
  std::string bytes;
  q8_encode(rows, width, bytes);
  std::vector<float> out;
  q8_decode(bytes, width, out);
  return out;
}

}  // namespace px::swarm
