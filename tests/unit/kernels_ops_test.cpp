// Row ops against double-precision references. Tolerances are a few f32 ulps of the
// result (each op does 2-4 roundings of values near 1 in magnitude).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "force_target.h"
#include "kernel_reference.h"
#include "kernels/cpu/simd.h"
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

// Grouped-query attention over a paged cache, on every SIMD target: 3 query heads share one KV
// head of dimension 84 (whole vectors plus a tail of 4 on 8- and 16-lane targets), 37 positions
// in blocks of 16 (the last one partial, its unused slots NaN), keys dimension-major with
// another head's data beside them, values position-major with another head's data between rows.
TEST(AttendKvHead, MatchesDoubleReferenceOnEveryTargetAndEachQueryIsIndependent) {
  ref::Rng rng(9);
  const int n_q = 3, head_dim = 84, n_pos = 37, block_size = 16;
  const int64_t row_stride = 2 * head_dim;  // values: [this head | another head] per row
  const int n_blocks = (n_pos + block_size - 1) / block_size;
  const auto q = rng.normals(n_q * head_dim);
  // Blocks deliberately out of order in memory, as a block table would have them.
  std::vector<std::vector<float>> key_storage, value_storage;
  std::vector<const float*> keys(n_blocks), values(n_blocks);
  for (int b = 0; b < n_blocks; ++b) {
    key_storage.push_back(rng.normals(2 * head_dim * block_size));  // [this head | another] x [d][slot]
    value_storage.push_back(rng.normals(block_size * row_stride));
  }
  for (int slot = n_pos % block_size; slot < block_size; ++slot) {  // never-written slots
    for (int d = 0; d < head_dim; ++d) key_storage[0][d * block_size + slot] = NAN;
  }
  for (int b = 0; b < n_blocks; ++b) {
    keys[b] = key_storage[n_blocks - 1 - b].data();
    values[b] = value_storage[n_blocks - 1 - b].data();
  }
  auto key = [&](int p, int d) { return keys[p / block_size][d * block_size + p % block_size]; };
  auto value = [&](int p) { return values[p / block_size] + int64_t(p % block_size) * row_stride; };
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (int64_t target : kernel_simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    std::vector<float> probs(n_q * n_pos), out(n_q * head_dim, NAN);
    attend_kv_head(q.data(), n_q, head_dim, scale, KeyBlocks{keys.data(), block_size},
                   KvRows{values.data(), block_size, row_stride}, n_pos, probs.data(), out.data());
    for (int g = 0; g < n_q; ++g) {
      // Double reference: scores, softmax, weighted values.
      std::vector<double> p(n_pos);
      double max = -INFINITY, sum = 0;
      for (int j = 0; j < n_pos; ++j) {
        double s = 0;
        for (int d = 0; d < head_dim; ++d) s += double(q[g * head_dim + d]) * key(j, d);
        p[j] = s * scale;
        max = std::max(max, p[j]);
      }
      for (double& x : p) sum += (x = std::exp(x - max));
      for (int j = 0; j < n_pos; ++j) ASSERT_NEAR(probs[g * n_pos + j], p[j] / sum, 1e-5 * p[j] / sum + 1e-7) << g << " " << j;
      for (int d = 0; d < head_dim; ++d) {
        double expected = 0, magnitude = 0;
        for (int j = 0; j < n_pos; ++j) {
          expected += p[j] / sum * value(j)[d];
          magnitude += p[j] / sum * std::fabs(value(j)[d]);
        }
        EXPECT_NEAR(out[g * head_dim + d], expected, 1e-5 * magnitude + 1e-7) << g << " " << d;
      }
      // The value sums are axpy's fused multiply-adds in position order: the same bits.
      std::vector<float> loop_out(head_dim, 0.0f);
      for (int j = 0; j < n_pos; ++j) axpy(probs[g * n_pos + j], value(j), loop_out.data(), head_dim);
      EXPECT_EQ(0, std::memcmp(loop_out.data(), out.data() + g * head_dim, head_dim * sizeof(float))) << g;
      // A query's result does not depend on the others in the call.
      std::vector<float> alone_probs(n_pos), alone(head_dim);
      attend_kv_head(q.data() + g * head_dim, 1, head_dim, scale, KeyBlocks{keys.data(), block_size},
                     KvRows{values.data(), block_size, row_stride}, n_pos, alone_probs.data(), alone.data());
      EXPECT_EQ(0, std::memcmp(alone.data(), out.data() + g * head_dim, head_dim * sizeof(float))) << g;
    }
  }
}

}  // namespace
}  // namespace px
