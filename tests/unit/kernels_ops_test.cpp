// Row ops against double-precision references. Tolerances are a few f32 ulps of the
// result (each op does 2-4 roundings of values near 1 in magnitude).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernel_reference.h"
#include "kernels/cpu/ops.h"

namespace px {
namespace {

constexpr double kUlp = 1.0 / (1 << 23);

TEST(RmsNorm, MatchesDoubleReferenceWithAndWithoutWeight) {
  ref::Rng rng(1);
  for (int64_t n : {1, 17, 4096}) {
    const auto x = rng.normals(n, 3.0);
    const auto w = rng.normals(n);
    for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
      std::vector<float> y(n);
      rms_norm(x.data(), weight, y.data(), n, 1e-6f);
      const auto expected = ref::rms_norm(x.data(), weight, n, 1e-6);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(y[i], expected[i], 4 * kUlp * std::fabs(expected[i]) + 1e-30) << n << " " << i;
      }
    }
  }
}

TEST(RmsNorm, WorksInPlaceAndEpsilonKeepsZerosFinite) {
  ref::Rng rng(2);
  auto x = rng.normals(64);
  const auto expected = ref::rms_norm(x.data(), nullptr, 64, 1e-5);
  rms_norm(x.data(), nullptr, x.data(), 64, 1e-5f);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(x[i], expected[i], 4 * kUlp * std::fabs(expected[i]));
  std::vector<float> zeros(8, 0.0f), y(8, 1.0f);
  rms_norm(zeros.data(), nullptr, y.data(), 8, 1e-5f);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

class RopeStyles : public ::testing::TestWithParam<RopeStyle> {};

TEST_P(RopeStyles, MatchesDoubleReferenceAtSmallAndLargePositions) {
  const RopeStyle style = GetParam();
  const int64_t d = 128;
  std::vector<float> freqs(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) freqs[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / d));
  ref::Rng rng(3);
  for (float pos : {0.0f, 1.0f, 17.0f, 4095.0f, 131071.0f}) {
    auto head = rng.normals(d);
    const auto expected = ref::rope(head.data(), d, pos, freqs.data(), style == RopeStyle::Neox);
    rope(head.data(), d, pos, freqs.data(), style);
    for (int64_t i = 0; i < d; ++i) {
      // Inputs are ~1: the result carries ~3 roundings (cos/sin, two products, one sum).
      EXPECT_NEAR(head[i], expected[i], 1e-6) << "pos " << pos << " i " << i;
    }
  }
}

TEST_P(RopeStyles, SplitCosSinThenApplyEqualsRope) {
  const RopeStyle style = GetParam();
  const int64_t d = 64;
  std::vector<float> freqs(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) freqs[i] = static_cast<float>(std::pow(500000.0, -2.0 * i / d));
  ref::Rng rng(4);
  auto a = rng.normals(d);
  auto b = a;
  rope(a.data(), d, 333.0f, freqs.data(), style);
  std::vector<float> c(d / 2), s(d / 2);
  rope_cos_sin(333.0f, freqs.data(), d / 2, c.data(), s.data());
  rope_apply(b.data(), d, c.data(), s.data(), style);
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Ops, RopeStyles, ::testing::Values(RopeStyle::Norm, RopeStyle::Neox),
                         [](const auto& info) {
                           return info.param == RopeStyle::Norm ? "Norm" : "Neox";
                         });

// NORM and NEOX differ only in which elements form a pair.
TEST(Rope, NormRotatesAdjacentPairsAndNeoxRotatesHalves) {
  const float freqs[2] = {1.0f, 0.0f};  // pair 0 turns by pos radians, pair 1 stays
  const float pos = 1.5707963267948966f;  // ~90 degrees
  float norm[4] = {1, 0, 5, 6};
  rope(norm, 4, pos, freqs, RopeStyle::Norm);  // pairs (0,1), (2,3)
  EXPECT_NEAR(norm[0], 0.0f, 1e-6);
  EXPECT_NEAR(norm[1], 1.0f, 1e-6);
  EXPECT_EQ(norm[2], 5.0f);
  EXPECT_EQ(norm[3], 6.0f);
  float neox[4] = {1, 5, 0, 6};
  rope(neox, 4, pos, freqs, RopeStyle::Neox);  // pairs (0,2), (1,3)
  EXPECT_NEAR(neox[0], 0.0f, 1e-6);
  EXPECT_NEAR(neox[2], 1.0f, 1e-6);
  EXPECT_EQ(neox[1], 5.0f);
  EXPECT_EQ(neox[3], 6.0f);
}

TEST(Softmax, MatchesDoubleReferenceAndSumsToOne) {
  ref::Rng rng(5);
  for (int64_t n : {1, 3, 1000}) {
    auto x = rng.normals(n, 4.0);
    x[0] = 80.0f;  // exp(80) overflows f32 without the max subtraction
    const auto expected = ref::softmax(x.data(), n);
    softmax(x.data(), n);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      // x - max is rounded to f32 before exp: |x - max| * 2^-24 relative, ~1e-5 at 100.
      EXPECT_NEAR(x[i], expected[i], 1e-5 * expected[i] + 1e-40) << n << " " << i;
      sum += x[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(Softmax, MaskedEntriesBecomeZeroAndAllMaskedIsUniform) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.0f, -inf, 1.0f, -inf};
  softmax(x.data(), 4);
  EXPECT_EQ(x, (std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f}));
  std::vector<float> all = {-inf, -inf};
  softmax(all.data(), 2);
  EXPECT_EQ(all, (std::vector<float>{0.5f, 0.5f}));
}

TEST(SiluMul, MatchesDoubleReference) {
  ref::Rng rng(6);
  const auto g = rng.normals(513, 5.0), u = rng.normals(513);
  std::vector<float> out(513);
  silu_mul(g.data(), u.data(), out.data(), 513);
  for (int i = 0; i < 513; ++i) {
    const double expected = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
    EXPECT_NEAR(out[i], expected, 6 * kUlp * std::fabs(expected) + 1e-30) << i;
  }
  const float big[2] = {-100.0f, 100.0f}, one[2] = {1.0f, 1.0f};
  float y[2];
  silu_mul(big, one, y, 2);  // exp(100) is inf in f32: silu must still be finite
  EXPECT_NEAR(y[0], 0.0f, 1e-30);
  EXPECT_EQ(y[1], 100.0f);
}

TEST(AddInPlace, AddsElementwise) {
  std::vector<float> y = {1, 2, 3}, x = {0.5f, -2, 1e-8f};
  add_in_place(y.data(), x.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{1.5f, 0.0f, 3.0f + 1e-8f}));
}

}  // namespace
}  // namespace px
