// Q8_0 / Q4_0 matrices repacked into 16-row groups (kernels/cpu/interleaved.h): on every
// dispatch target the product equals the plain C++ algorithm over that layout bit for bit,
// and that algorithm equals the exact dot product of the decoded weights with the int8-rounded
// activations up to f32 rounding. Row counts that are not a multiple of 16, thread splits,
// token tiles and shared-input products are covered.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "force_target.h"
#include "kernel_reference.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/interleaved.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"
#include "matmul_checks.h"

namespace px {
namespace {

// The matrix also repacked into 16-row groups.
struct InterleavedProblem : MatmulProblem {
  std::vector<uint8_t> interleaved;

  InterleavedProblem(DType t, int64_t r, int64_t c, int64_t n, uint64_t seed) : MatmulProblem(t, r, c, n, seed) {
    interleaved.resize(kernels::interleaved_bytes(t, r, c));
    kernels::interleave_rows(t, bytes.data(), r, c, interleaved.data());
  }
  WeightView view() const { return WeightView{bytes.data(), type, rows, cols, interleaved.data()}; }
  kernels::GroupRange groups() const {
    return kernels::GroupRange{interleaved.data(), type, rows, cols, 0,
                               (rows + kernels::kInterleaveRows - 1) / kernels::kInterleaveRows};
  }
};

std::vector<float> rounded_activations(const InterleavedProblem& p, const QuantizedActivations& acts) {
  std::vector<float> xq(p.x.size());
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    for (int64_t i = 0; i < p.cols; ++i) xq[t * p.cols + i] = acts.scales(t)[i / 32] * acts.q(t)[i];
  }
  return xq;
}

// On every target, with 1 or 3 threads and token by token, matmul gives `expected`'s bits.
void expect_every_target_gives(const InterleavedProblem& p, const std::vector<float>& expected) {
  ThreadPool one(1), three(3);
  for (int64_t target : kernel_simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    std::vector<float> y1(p.n_tokens * p.rows, NAN), y3(p.n_tokens * p.rows, NAN);
    matmul(p.view(), p.x.data(), p.n_tokens, y1.data(), one);
    matmul(p.view(), p.x.data(), p.n_tokens, y3.data(), three);
    EXPECT_EQ(0, std::memcmp(y1.data(), expected.data(), y1.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(y3.data(), expected.data(), y3.size() * sizeof(float)));
    expect_tokens_match_batch(p.view(), p.x.data(), p.n_tokens, three, {0, 3, 4, p.n_tokens - 1});
  }
}

class Interleaved : public ::testing::TestWithParam<DType> {};

TEST_P(Interleaved, LayoutHasTheSameBytesPerRowGroup) {
  const DType type = GetParam();
  EXPECT_EQ(kernels::interleaved_bytes(type, 32, 256), 32 * row_bytes(type, 256));
  EXPECT_EQ(kernels::interleaved_bytes(type, 33, 256), 48 * row_bytes(type, 256));  // padded group
  EXPECT_EQ(kernels::interleaved_group_bytes(type, 256), 16 * row_bytes(type, 256));
}

TEST_P(Interleaved, ScalarAlgorithmIsTheExactDotProduct) {
  const InterleavedProblem p(GetParam(), 37, 256, 5, 11);
  QuantizedActivations acts;
  acts.quantize(ActFormat::Q8_32, p.x.data(), p.n_tokens, p.cols);
  const auto xq = rounded_activations(p, acts);
  std::vector<float> y(p.n_tokens * p.rows, NAN);
  kernels::scalar::interleaved_rows(p.groups(), acts, 0, p.n_tokens, y.data(), p.rows);
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    const float* xt = xq.data() + t * p.cols;
    for (int64_t r = 0; r < p.rows; ++r) {
      ASSERT_NEAR(y[t * p.rows + r], ref::dot(p.w[r], xt), 1e-5 * ref::abs_dot(p.w[r], xt) + 1e-9)
          << "t " << t << " r " << r;
    }
  }
}

TEST_P(Interleaved, EveryTargetEqualsTheScalarAlgorithmBitForBit) {
  // 37 rows: two full groups and a partial one; 7 tokens: a 4-token tile and 3 single ones.
  const InterleavedProblem p(GetParam(), 37, 768, 7, 13);
  QuantizedActivations acts;
  acts.quantize(ActFormat::Q8_32, p.x.data(), p.n_tokens, p.cols);
  std::vector<float> expected(p.n_tokens * p.rows);
  kernels::scalar::interleaved_rows(p.groups(), acts, 0, p.n_tokens, expected.data(), p.rows);
  expect_every_target_gives(p, expected);
}

TEST_P(Interleaved, ManyTokensAndPanelsMatchOneTokenAtATime) {
  const InterleavedProblem p(GetParam(), 150, 2048, 70, 17);
  ThreadPool pool(3);
  expect_tokens_match_batch(p.view(), p.x.data(), p.n_tokens, pool, {0, 3, 4, 63, 64, 69});
}

TEST_P(Interleaved, SharedInputProductsEqualSeparateOnes) {
  const DType type = GetParam();
  const InterleavedProblem a(type, 40, 512, 3, 21), b(type, 16, 512, 3, 22);
  QuantizedActivations acts;
  acts.quantize(ActFormat::Q8_32, a.x.data(), a.n_tokens, a.cols);
  ThreadPool pool(2);
  std::vector<float> ya(a.n_tokens * a.rows), yb(a.n_tokens * b.rows);
  std::vector<float> sa(ya.size()), sb(yb.size());
  const WeightView va = a.view(), vb = b.view();
  const WeightView* weights[] = {&va, &vb};
  float* outputs[] = {ya.data(), yb.data()};
  matmul_shared_input(weights, outputs, acts, pool);
  matmul(va, acts, sa.data(), pool);
  matmul(vb, acts, sb.data(), pool);
  EXPECT_EQ(0, std::memcmp(ya.data(), sa.data(), ya.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(yb.data(), sb.data(), yb.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Kernels, Interleaved, ::testing::Values(DType::Q8_0, DType::Q4_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

class InterleavedHalf : public ::testing::TestWithParam<DType> {};

TEST_P(InterleavedHalf, LayoutHasTheSameBytesPerRowGroup) {
  const DType type = GetParam();
  EXPECT_EQ(kernels::interleaved_bytes(type, 32, 100), 32 * row_bytes(type, 100));
  EXPECT_EQ(kernels::interleaved_bytes(type, 33, 100), 48 * row_bytes(type, 100));  // padded group
}

// 37 rows (a partial group), 770 columns (not a multiple of the 4 partial sums), 7 tokens (a
// 4-token tile and 3 single ones): every target gives the plain C++ algorithm's bits, with 1 or
// 3 threads and token by token, and that algorithm is the exact dot product up to f32 rounding.
TEST_P(InterleavedHalf, EveryTargetEqualsTheScalarAlgorithmBitForBit) {
  const InterleavedProblem p(GetParam(), 37, 770, 7, 31);
  std::vector<float> expected(p.n_tokens * p.rows);
  kernels::scalar::interleaved_half_rows(p.groups(), p.x.data(), 0, p.n_tokens, expected.data(), p.rows);
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    for (int64_t r = 0; r < p.rows; ++r) {
      const float* xt = p.x.data() + t * p.cols;
      ASSERT_NEAR(expected[t * p.rows + r], ref::dot(p.w[r], xt), 1e-5 * ref::abs_dot(p.w[r], xt) + 1e-9)
          << "t " << t << " r " << r;
    }
  }
  expect_every_target_gives(p, expected);
}

TEST_P(InterleavedHalf, ManyTokensAndPanelsMatchOneTokenAtATime) {
  const InterleavedProblem p(GetParam(), 150, 2048, 70, 33);
  ThreadPool pool(3);
  expect_tokens_match_batch(p.view(), p.x.data(), p.n_tokens, pool, {0, 3, 4, 63, 64, 69});
}

INSTANTIATE_TEST_SUITE_P(Kernels, InterleavedHalf, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(InterleavedChoice, OnlyTypesWithAnInterleavedKernelAreRepacked) {
  for (DType t : {DType::F32, DType::Q4_K, DType::Q6_K}) {
    EXPECT_FALSE(kernels::interleave_pays_off(t)) << dtype_name(t);
  }
  EXPECT_THROW(kernels::interleaved_bytes(DType::F32, 16, 64), Error);
  setenv("PX_REPACK", "0", 1);
  EXPECT_FALSE(kernels::interleave_pays_off(DType::Q8_0));
  EXPECT_FALSE(kernels::interleave_pays_off(DType::F16));
  unsetenv("PX_REPACK");
}

}  // namespace
}  // namespace px
