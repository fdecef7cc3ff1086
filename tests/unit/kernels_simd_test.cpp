// Every SIMD target compiled into the kernels and supported by this CPU, forced in turn:
// activation rounding equals the scalar definition exactly, and the row kernels agree with
// the plain C++ version of the same algorithm (matmul_scalar.h) up to f32 summation order.
//
// Tolerance: the integer sums per block are exact on every target; only the order of the
// f32 multiply-adds over blocks differs, so |simd - exact| <= 1e-5 * sum_i |w_i * x^_i|
// where x^ are the int8-rounded activations (the bound is ~100x the worst case at these
// sizes and ~1000x below the activation rounding error itself).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <hwy/targets.h>
#include <vector>

#include "core/thread_pool.h"
#include "force_target.h"
#include "kernel_reference.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/matmul_scalar.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"
#include "matmul_checks.h"

namespace px {
namespace {

bool is_k_quant(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }
bool is_block_quant(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || is_k_quant(t); }

TEST(SimdTargets, IncludeTheScalarFallbackAndCanBeForced) {
  const auto targets = kernel_simd_targets();
  ASSERT_FALSE(targets.empty());
  bool has_fallback = false;
  for (int64_t t : targets) {
    has_fallback |= (t == HWY_SCALAR || t == HWY_EMU128);
    ForceTarget force(t);
    EXPECT_EQ(active_simd_target(), hwy::TargetName(t));
  }
  EXPECT_TRUE(has_fallback);
}

TEST(SimdTargets, ActivationRoundingEqualsScalarDefinitionOnEveryTarget) {
  ref::Rng rng(77);
  const int64_t cols = 1024;
  auto x = rng.normals(cols, 2.0);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // all-zero blocks get scale 0
  x[3] = 1e-30f;
  for (ActFormat format : {ActFormat::Q8_32, ActFormat::Q8_256}) {
    const int64_t block = act_block_size(format);
    std::vector<int8_t> q(cols);
    std::vector<float> scales(cols / block);
    std::vector<int16_t> sums(cols / 16);
    kernels::scalar::quantize_activation_row(x.data(), cols, block, q.data(), scales.data(),
                                             sums.data());
    // The scalar definition itself: scale = amax / 127, q the nearest integer to x / scale.
    for (int64_t i = 0; i < cols; ++i) {
      const double scale = scales[i / block];
      if (scale == 0) {
        ASSERT_EQ(q[i], 0);
      } else {
        ASSERT_LE(std::fabs(q[i] - x[i] / scale), 0.5 + 1e-5) << i;
      }
    }
    for (int64_t g = 0; g < cols / 16; ++g) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += q[g * 16 + k];
      ASSERT_EQ(sums[g], sum);
    }
    for (int64_t target : kernel_simd_targets()) {
      SCOPED_TRACE(hwy::TargetName(target));
      ForceTarget force(target);
      QuantizedActivations acts;
      acts.quantize(format, x.data(), 1, cols);
      EXPECT_EQ(0, std::memcmp(acts.q(0), q.data(), cols));
      EXPECT_EQ(0, std::memcmp(acts.scales(0), scales.data(), scales.size() * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(acts.sums16(0), sums.data(), sums.size() * sizeof(int16_t)));
    }
  }
}

class SimdAllTypes : public ::testing::TestWithParam<DType> {};

using Problem = MatmulProblem;

// The activations as the kernels see them: int8-rounded for block-quant weights.
std::vector<float> effective_activations(const Problem& p, const QuantizedActivations& acts) {
  if (!is_block_quant(p.type)) return p.x;
  std::vector<float> xq(p.x.size());
  const int64_t block = act_block_size(acts.format());
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    for (int64_t i = 0; i < p.cols; ++i) {
      xq[t * p.cols + i] = acts.scales(t)[i / block] * acts.q(t)[i];
    }
  }
  return xq;
}

std::vector<float> scalar_algorithm(const Problem& p, const QuantizedActivations& acts) {
  std::vector<float> y(p.n_tokens * p.rows);
  const auto range = p.range();
  if (p.type == DType::Q8_0 || p.type == DType::Q4_0) {
    kernels::scalar::q8_rows(p.type, range, acts, 0, p.n_tokens, y.data(), p.rows);
  } else if (is_k_quant(p.type)) {
    kernels::scalar::kquant_rows(p.type, range, acts, 0, p.n_tokens, y.data(), p.rows);
  } else {
    kernels::scalar::float_rows(p.type, range, p.x.data(), 0, p.n_tokens, y.data(), p.rows);
  }
  return y;
}

TEST_P(SimdAllTypes, EveryTargetAgreesWithTheScalarAlgorithm) {
  const DType type = GetParam();
  const Problem p(type, 13, 768, 7, 101);
  QuantizedActivations acts;
  if (is_block_quant(type)) {
    acts.quantize(is_k_quant(type) ? ActFormat::Q8_256 : ActFormat::Q8_32, p.x.data(), p.n_tokens,
                  p.cols);
  }
  const auto xq = effective_activations(p, acts);
  const auto expected = scalar_algorithm(p, acts);
  // The scalar algorithm is itself the exact value up to f32 rounding.
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    for (int64_t r = 0; r < p.rows; ++r) {
      const float* xt = xq.data() + t * p.cols;
      ASSERT_NEAR(expected[t * p.rows + r], ref::dot(p.w[r], xt), 1e-5 * ref::abs_dot(p.w[r], xt))
          << "scalar t " << t << " r " << r;
    }
  }
  ThreadPool one(1), three(3);
  for (int64_t target : kernel_simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    std::vector<float> y1(p.n_tokens * p.rows), y3(p.n_tokens * p.rows, NAN);
    matmul(p.view(), p.x.data(), p.n_tokens, y1.data(), one);
    matmul(p.view(), p.x.data(), p.n_tokens, y3.data(), three);
    EXPECT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)));
    for (int64_t t = 0; t < p.n_tokens; ++t) {
      const float* xt = xq.data() + t * p.cols;
      for (int64_t r = 0; r < p.rows; ++r) {
        EXPECT_NEAR(y1[t * p.rows + r], expected[t * p.rows + r],
                    1e-5 * ref::abs_dot(p.w[r], xt) + 1e-9)
            << "t " << t << " r " << r;
      }
      // Each token alone gives the same bits as within the batch (4-token and 1-token
      // kernels share their arithmetic).
      std::vector<float> single(p.rows);
      matmul(p.view(), p.x.data() + t * p.cols, 1, single.data(), one);
      EXPECT_EQ(0, std::memcmp(single.data(), y1.data() + t * p.rows, p.rows * sizeof(float)))
          << "token " << t;
    }
  }
}

// Rows longer than the token tile budget and several panels: exercises the tiling paths.
TEST_P(SimdAllTypes, LargeShapesMatchOneTokenAtATime) {
  const DType type = GetParam();
  const Problem p(type, 70, 4096, 70, 103);
  ThreadPool pool(3);
  expect_tokens_match_batch(p.view(), p.x.data(), p.n_tokens, pool, {0, 3, 4, 63, 64, 69});
}

// The vectorized ops (double sums, vector exp) on every target, including vector tails.
// Tolerances as in kernels_ops_test.cpp: a few f32 ulps; softmax 1e-5 relative.
TEST(SimdTargets, OpsMatchDoubleReferenceOnEveryTarget) {
  constexpr double kUlp = 1.0 / (1 << 23);
  ref::Rng rng(9);
  for (int64_t target : kernel_simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    for (int64_t n : {1, 15, 100, 1029}) {
      const auto x = rng.normals(n, 3.0), w = rng.normals(n), u = rng.normals(n);
      std::vector<float> y(n);
      rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
      const auto expected_norm = ref::rms_norm(x.data(), w.data(), n, 1e-6);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(y[i], expected_norm[i], 4 * kUlp * std::fabs(expected_norm[i]) + 1e-30) << i;
      }
      silu_mul(x.data(), u.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double expected = x[i] / (1.0 + std::exp(-double(x[i]))) * u[i];
        ASSERT_NEAR(y[i], expected, 6 * kUlp * std::fabs(expected) + 1e-30) << i;
      }
      auto s = x;
      if (n > 1) s[0] = -INFINITY;  // a masked entry
      const auto expected_softmax = ref::softmax(s.data(), n);
      softmax(s.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(s[i], expected_softmax[i], 1e-5 * expected_softmax[i] + 1e-40) << i;
      }
      if (n > 1) {
        ASSERT_EQ(s[0], 0.0f);
      }
      // dot and axpy (attention's inner loops): bounded by the f32 rounding of |a|.|b|
      double expected_dot = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        expected_dot += double(x[i]) * double(u[i]);
        magnitude += std::fabs(double(x[i]) * double(u[i]));
      }
      ASSERT_NEAR(dot(x.data(), u.data(), n), expected_dot, 2 * double(n) * kUlp * magnitude + 1e-30);
      std::vector<float> acc(u.begin(), u.end());
      axpy(0.5f, x.data(), acc.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double expected = double(u[i]) + 0.5 * double(x[i]);
        ASSERT_NEAR(acc[i], expected, 2 * kUlp * (std::fabs(u[i]) + std::fabs(0.5 * x[i])) + 1e-30) << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, SimdAllTypes,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                           DType::Q4_0, DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace px
