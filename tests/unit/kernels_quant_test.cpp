// Block layouts, (de)quantization and fp16/bf16 conversion against the independent
// reference in kernel_reference.h and against hand-built blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "kernel_reference.h"
#include "kernels/cpu/quant.h"

namespace px {
namespace {

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint32_t float_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

std::vector<float> dequantize(DType type, const void* bytes, int64_t n) {
  std::vector<float> out(n);
  dequantize_row(type, bytes, out.data(), n);
  return out;
}

// ---------------------------------------------------------------- fp16 / bf16

TEST(Fp16, EveryHalfDecodesExactlyAndRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32(uint16_t(h));
    const double expected = ref::half_value(uint16_t(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_EQ(f32_to_fp16(f) & 0x7c00, 0x7c00) << h;
      ASSERT_NE(f32_to_fp16(f) & 0x3ff, 0) << "nan must stay nan: " << h;
      continue;
    }
    ASSERT_EQ(double(f), expected) << h;
    ASSERT_EQ(f32_to_fp16(f), h) << h;
  }
}

// Between two adjacent finite halves, the float midpoint rounds to the one with an even
// mantissa, and the floats just beside the midpoint round to the nearer half.
TEST(Fp16, RoundsToNearestWithTiesToEven) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint16_t lo = uint16_t(h | sign), hi = uint16_t((h + 1) | sign);
      const float mid = static_cast<float>((ref::half_value(lo) + ref::half_value(hi)) / 2);
      ASSERT_EQ(double(mid), (ref::half_value(lo) + ref::half_value(hi)) / 2);  // exact in f32
      const uint16_t even = (h & 1) ? hi : lo;
      ASSERT_EQ(f32_to_fp16(mid), even) << h;
      const float toward_lo = std::nextafter(mid, float(ref::half_value(lo)));
      const float toward_hi = std::nextafter(mid, float(ref::half_value(hi)));
      ASSERT_EQ(f32_to_fp16(toward_lo), lo) << h;
      ASSERT_EQ(f32_to_fp16(toward_hi), hi) << h;
    }
  }
}

TEST(Fp16, OverflowsToInfinityAndFlushesTinyToZero) {
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(65519.99f), 0x7bff);  // below the midpoint to 2^16
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);   // midpoint ties to even = infinity
  EXPECT_EQ(f32_to_fp16(1e9f), 0x7c00);
  EXPECT_EQ(f32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: even
  EXPECT_EQ(f32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_fp16(-1e-30f), 0x8000);
}

TEST(Bf16, EveryValueDecodesExactlyAndRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    ASSERT_EQ(float_to_bits(f), h << 16) << h;
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << h;
    } else {
      ASSERT_EQ(f32_to_bf16(f), h) << h;
    }
  }
}

TEST(Bf16, RoundsToNearestWithTiesToEven) {
  for (uint32_t h = 0; h < 0x7f7f; ++h) {
    const uint32_t mid_bits = (h << 16) | 0x8000;  // exactly between h and h + 1
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(f32_to_bf16(bits_to_float(mid_bits)), even) << h;
    ASSERT_EQ(f32_to_bf16(bits_to_float(mid_bits - 1)), h) << h;
    ASSERT_EQ(f32_to_bf16(bits_to_float(mid_bits + 1)), h + 1) << h;
    ASSERT_EQ(f32_to_bf16(-bits_to_float(mid_bits)), even | 0x8000) << h;
  }
}

// ---------------------------------------------------------------- hand-built blocks

TEST(Dequantize, Q8_0HandBuiltBlockIsScaleTimesSignedQuant) {
  BlockQ8_0 block;
  block.d = 0x3800;  // 0.5
  for (int j = 0; j < 32; ++j) block.qs[j] = int8_t(j * 8 - 128);  // -128 .. 120
  const auto y = dequantize(DType::Q8_0, &block, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * (j * 8 - 128)) << j;
}

TEST(Dequantize, Q4_0HandBuiltBlockPutsLowNibblesFirst) {
  BlockQ4_0 block;
  block.d = 0x4000;  // 2.0
  for (int j = 0; j < 16; ++j) block.qs[j] = uint8_t(j | ((15 - j) << 4));
  const auto y = dequantize(DType::Q4_0, &block, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * (j - 8)) << j;
    EXPECT_EQ(y[j + 16], 2.0f * (7 - j)) << j;
  }
}

TEST(Dequantize, Q4_KHandBuiltBlockUnpacksSixBitScalesAndMins) {
  const int sc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
  const int mn[8] = {0, 1, 62, 4, 20, 7, 63, 40};
  BlockQ4_K block;
  block.d = 0x3C00;     // 1.0
  block.dmin = 0x3800;  // 0.5
  // Packed by hand: bytes 0-3 = sc[0..3] | (sc[4..7] >> 4) << 6, bytes 4-7 = mn[0..3] |
  // (mn[4..7] >> 4) << 6, bytes 8-11 = (sc[4..7] & 15) | (mn[4..7] & 15) << 4.
  const uint8_t packed[12] = {65, 130, 195, 63, 64, 1, 254, 132, 65, 113, 240, 133};
  std::memcpy(block.scales, packed, 12);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) block.qs[32 * c + l] = uint8_t((l & 15) | (((l + c) & 15) << 4));
  }
  const auto y = dequantize(DType::Q4_K, &block, 256);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, l = e % 32, sub = e / 32;
    const int q = (e % 64) < 32 ? (l & 15) : ((l + c) & 15);
    EXPECT_EQ(y[e], 1.0f * sc[sub] * q - 0.5f * mn[sub]) << e;
  }
  const auto r = ref::dequantize(DType::Q4_K, reinterpret_cast<const uint8_t*>(&block), 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(double(y[e]), r[e]) << e;
}

TEST(Dequantize, Q6_KHandBuiltBlockCombinesLowAndHighBits) {
  BlockQ6_K block;
  std::memset(&block, 0, sizeof block);
  block.d = 0x3400;  // 0.25
  for (int g = 0; g < 16; ++g) block.scales[g] = int8_t((g % 2 ? -1 : 1) * (g + 1));
  block.scales[15] = -128;
  // First half: ql[0] = 0x21, ql[32] = 0x54, qh[0] = 0b11100100.
  block.ql[0] = 0x21;
  block.ql[32] = 0x54;
  block.qh[0] = 0xE4;
  // Second half, l = 5: ql[64 + 5] = 0xF0, ql[64 + 37] = 0x00, qh[32 + 5] = 0b00011011.
  block.ql[69] = 0xF0;
  block.qh[37] = 0x1B;
  std::vector<int> q(256, 0);
  q[0] = 1 | (0 << 4);      // ql[0] low, qh[0] bits 0-1
  q[32] = 4 | (1 << 4);     // ql[32] low, qh[0] bits 2-3
  q[64] = 2 | (2 << 4);     // ql[0] high, qh[0] bits 4-5
  q[96] = 5 | (3 << 4);     // ql[32] high, qh[0] bits 6-7
  q[133] = 0 | (3 << 4);    // second half l=5: ql[69] low, qh[37] bits 0-1
  q[165] = 0 | (2 << 4);    // ql[101] low, qh[37] bits 2-3
  q[197] = 15 | (1 << 4);   // ql[69] high, qh[37] bits 4-5
  q[229] = 0 | (0 << 4);    // ql[101] high, qh[37] bits 6-7
  const auto y = dequantize(DType::Q6_K, &block, 256);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(y[e], 0.25f * block.scales[e / 16] * (q[e] - 32)) << e;
  }
  const auto r = ref::dequantize(DType::Q6_K, reinterpret_cast<const uint8_t*>(&block), 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(double(y[e]), r[e]) << e;
}

// ---------------------------------------------------------------- quantizers

TEST(Quantize, Q4_0FollowsGgmlRoundingAndSignConvention) {
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;   // largest magnitude: d = -4 / -8 = 0.5, maps to quant 0
  x[1] = 1.0f;    // 1 / 0.5 + 8.5 = 10.5 -> 10
  x[2] = 3.9f;    // 7.8 + 8.5 = 16.3 -> clamped to 15
  x[17] = -0.3f;  // -0.6 + 8.5 = 7.9 -> 7
  BlockQ4_0 block;
  quantize_row(DType::Q4_0, x.data(), &block, 32);
  EXPECT_EQ(block.d, 0x3800);
  EXPECT_EQ(block.qs[0], 0 | (8 << 4));
  EXPECT_EQ(block.qs[1], 10 | (7 << 4));
  EXPECT_EQ(block.qs[2], 15 | (8 << 4));
  EXPECT_EQ(block.qs[3], 8 | (8 << 4));
}

TEST(Quantize, RepresentableQ8_0AndQ4_0BlocksRoundTripExactly) {
  std::vector<float> x8(32), x4(32);
  for (int j = 0; j < 32; ++j) x8[j] = 0.5f * ((j * 37) % 255 - 127);
  x8[5] = -63.5f;  // amax = 127 * 0.5
  for (int j = 0; j < 32; ++j) x4[j] = 0.25f * ((j * 5) % 16 - 8);
  x4[3] = -2.0f;  // max magnitude, negative: d = +0.25
  BlockQ8_0 b8;
  BlockQ4_0 b4;
  quantize_row(DType::Q8_0, x8.data(), &b8, 32);
  quantize_row(DType::Q4_0, x4.data(), &b4, 32);
  EXPECT_EQ(dequantize(DType::Q8_0, &b8, 32), x8);
  EXPECT_EQ(dequantize(DType::Q4_0, &b4, 32), x4);
  for (auto& v : x4) v = -v;  // max magnitude now positive: d = -0.25
  quantize_row(DType::Q4_0, x4.data(), &b4, 32);
  EXPECT_EQ(dequantize(DType::Q4_0, &b4, 32), x4);
}

struct RoundTripCase {
  DType type;
  double max_rel_rms;    // rms(error) / rms(x) over the whole row
  double max_block_err;  // max |error| / max |x| within each block of `block` elements
  int64_t block;
};

class QuantizeRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

// Gaussian rows with a few outliers and one all-zero block: the error stays within the
// format's resolution, zeros stay zero, and our dequantizer agrees with the reference.
TEST_P(QuantizeRoundTrip, ErrorStaysWithinFormatResolution) {
  const RoundTripCase c = GetParam();
  const int64_t n = 4096;
  ref::Rng rng(42);
  auto x = rng.normals(n);
  x[100] = 9.0f;
  x[1000] = -12.0f;
  std::fill(x.begin() + 512, x.begin() + 768, 0.0f);
  std::vector<uint8_t> bytes(row_bytes(c.type, n));
  quantize_row(c.type, x.data(), bytes.data(), n);
  const auto y = dequantize(c.type, bytes.data(), n);
  const auto r = ref::dequantize(c.type, bytes.data(), n);
  double err2 = 0, x2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(double(y[i]), r[i]) << i;
    err2 += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    x2 += double(x[i]) * x[i];
  }
  EXPECT_LE(std::sqrt(err2 / x2), c.max_rel_rms);
  for (int64_t b = 0; b < n; b += c.block) {
    double amax = 0, emax = 0;
    for (int64_t i = b; i < b + c.block; ++i) {
      amax = std::fmax(amax, std::fabs(x[i]));
      emax = std::fmax(emax, std::fabs(double(y[i]) - x[i]));
    }
    EXPECT_LE(emax, c.max_block_err * amax) << "block at " << b;
  }
  for (int64_t i = 512; i < 768; ++i) ASSERT_EQ(y[i], 0.0f) << i;
}

// Bounds: F16/BF16 are half an ulp (2^-11, 2^-8 relative); Q8_0 is half a step of amax/127
// plus the fp16 rounding of d; Q4_0 may clamp the opposite extreme by one full step
// (amax/8); the K-quants are bounded by their 4/6-bit steps relative to the super-block.
INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantizeRoundTrip,
    ::testing::Values(RoundTripCase{DType::F32, 0.0, 0.0, 1},
                      RoundTripCase{DType::F16, 3e-4, 4.9e-4, 1},
                      RoundTripCase{DType::BF16, 2.5e-3, 3.91e-3, 1},
                      RoundTripCase{DType::Q8_0, 7e-3, 0.57 / 127, 32},
                      RoundTripCase{DType::Q4_0, 0.1, 1.0 / 8 * 1.01, 32},
                      RoundTripCase{DType::Q4_K, 0.09, 0.08, 256},
                      RoundTripCase{DType::Q6_K, 0.025, 0.025, 256}),
    [](const auto& info) { return std::string(dtype_name(info.param.type)); });

TEST(Quantize, RejectsTypesWeCannotComputeAndPartialBlocks) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> bytes(1024);
  EXPECT_THROW(quantize_row(DType::Q5_0, x.data(), bytes.data(), 256), Error);
  EXPECT_THROW(dequantize_row(DType::Q2_K, bytes.data(), x.data(), 256), Error);
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), bytes.data(), 33), Error);
  EXPECT_THROW(dequantize_row(DType::Q6_K, bytes.data(), x.data(), 128), Error);
}

}  // namespace
}  // namespace px
