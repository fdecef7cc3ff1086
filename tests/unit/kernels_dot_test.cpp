// dot_row and matmul for every computable weight type against the double-precision
// reference of kernel_reference.h, plus thread-count and batching invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernel_reference.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"

namespace px {
namespace {

bool is_block_quant(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K || t == DType::Q6_K;
}

// Weights quantized from Gaussian data, with the reference's own decoding of every row.
struct TestMatrix {
  DType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<std::vector<double>> decoded;  // [rows][cols]

  TestMatrix(DType t, int64_t r, int64_t c, uint64_t seed) : type(t), rows(r), cols(c) {
    ref::Rng rng(seed);
    const size_t rb = row_bytes(t, c);
    bytes.resize(rb * r);
    for (int64_t i = 0; i < r; ++i) {
      // Rows of different magnitude so relative errors are checked at several scales.
      const auto w = rng.normals(c, 0.05 * (1 + i % 5));
      quantize_row(t, w.data(), bytes.data() + i * rb, c);
      decoded.push_back(ref::dequantize(t, bytes.data() + i * rb, c));
    }
  }
  WeightView view() const { return WeightView{bytes.data(), type, rows, cols}; }
  const uint8_t* row(int64_t i) const { return bytes.data() + i * row_bytes(type, cols); }
};

// Allowed |error| of one output: f32 accumulation (2e-5 of the sum of |terms|, well above
// the ~n/8 * 2^-24 worst case of our summation trees at these sizes), plus, for block-quant
// weights, the rounding of the activations to int8 blocks (32 elements for Q8_0/Q4_0, 256
// for the K-quants), bounded by half a quantization step per element.
double tolerance(DType type, const std::vector<double>& w, const float* x) {
  double tol = 2e-5 * ref::abs_dot(w, x) + 1e-7;
  if (is_block_quant(type)) {
    const int64_t block = (type == DType::Q4_K || type == DType::Q6_K) ? 256 : 32;
    tol += ref::activation_rounding_bound(w, x, block);
  }
  return tol;
}

class DotAllTypes : public ::testing::TestWithParam<DType> {};

TEST_P(DotAllTypes, DotRowMatchesReferenceOfDecodedWeights) {
  const DType type = GetParam();
  const TestMatrix m(type, 5, 768, 7);
  ref::Rng rng(3);
  const auto x = rng.normals(m.cols);
  for (int64_t r = 0; r < m.rows; ++r) {
    const double expected = ref::dot(m.decoded[r], x.data());
    const double got = dot_row(type, m.row(r), x.data(), m.cols);
    EXPECT_NEAR(got, expected, 2e-5 * ref::abs_dot(m.decoded[r], x.data()) + 1e-7) << r;
  }
}

// Odd row counts, 1 and 7 tokens: every output within tolerance of the reference, and one
// thread gives bit-identical results to three.
TEST_P(DotAllTypes, MatmulMatchesReferenceAndIsIndependentOfThreadCount) {
  const DType type = GetParam();
  ThreadPool one(1), three(3);
  for (int64_t rows : {1, 37}) {
    for (int64_t n_tokens : {1, 7}) {
      const TestMatrix m(type, rows, 512, 11 + rows);
      ref::Rng rng(5 + n_tokens);
      const auto x = rng.normals(n_tokens * m.cols);
      std::vector<float> y1(n_tokens * rows), y3(n_tokens * rows, NAN);
      matmul(m.view(), x.data(), n_tokens, y1.data(), one);
      matmul(m.view(), x.data(), n_tokens, y3.data(), three);
      ASSERT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)))
          << "rows " << rows << " tokens " << n_tokens;
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x.data() + t * m.cols;
        for (int64_t r = 0; r < rows; ++r) {
          const double expected = ref::dot(m.decoded[r], xt);
          EXPECT_NEAR(y1[t * rows + r], expected, tolerance(type, m.decoded[r], xt))
              << "rows " << rows << " token " << t << " row " << r;
        }
      }
    }
  }
}

// A token's outputs do not depend on which other tokens share the call.
TEST_P(DotAllTypes, MatmulOfOneTokenEqualsItsRowInABatch) {
  const DType type = GetParam();
  ThreadPool pool(2);
  const TestMatrix m(type, 19, 256, 23);
  const int64_t n_tokens = 9;
  ref::Rng rng(29);
  const auto x = rng.normals(n_tokens * m.cols);
  std::vector<float> batch(n_tokens * m.rows), single(m.rows);
  matmul(m.view(), x.data(), n_tokens, batch.data(), pool);
  for (int64_t t = 0; t < n_tokens; ++t) {
    matmul(m.view(), x.data() + t * m.cols, 1, single.data(), pool);
    ASSERT_EQ(0, std::memcmp(single.data(), batch.data() + t * m.rows, m.rows * sizeof(float)))
        << "token " << t;
  }
}

// Q/K/V-style reuse: activations rounded once give the same bits as matmul rounding them.
TEST(Matmul, PrequantizedActivationsGiveTheSameBits) {
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const TestMatrix m(type, 21, 512, 41);
    ref::Rng rng(43);
    const auto x = rng.normals(5 * m.cols);
    QuantizedActivations acts;
    acts.quantize(activation_format(type), x.data(), 5, m.cols);
    std::vector<float> direct(5 * m.rows), reused(5 * m.rows);
    matmul(m.view(), x.data(), 5, direct.data(), pool);
    matmul(m.view(), acts, reused.data(), pool);
    EXPECT_EQ(0, std::memcmp(direct.data(), reused.data(), direct.size() * sizeof(float)))
        << dtype_name(type);
  }
}

TEST(Matmul, RejectsActivationsRoundedForAnotherWeightShapeOrType) {
  ThreadPool pool(1);
  const TestMatrix q4k(DType::Q4_K, 2, 512, 47);
  std::vector<float> x(512, 1.0f), y(2);
  QuantizedActivations acts;
  acts.quantize(ActFormat::Q8_32, x.data(), 1, 512);
  EXPECT_THROW(matmul(q4k.view(), acts, y.data(), pool), Error);  // needs Q8_256
  acts.quantize(ActFormat::Q8_256, x.data(), 1, 256);
  EXPECT_THROW(matmul(q4k.view(), acts, y.data(), pool), Error);  // 256 columns, not 512
  EXPECT_THROW(activation_format(DType::F16), Error);
}

INSTANTIATE_TEST_SUITE_P(Kernels, DotAllTypes,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                           DType::Q4_0, DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Float weights have no block size: row lengths that are not a multiple of any vector width.
TEST(Matmul, FloatTypesHandleAnyColumnCount) {
  ThreadPool pool(2);
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t cols : {1, 7, 100, 129}) {
      const TestMatrix m(type, 6, cols, 31 + cols);
      ref::Rng rng(37);
      const auto x = rng.normals(5 * cols);
      std::vector<float> y(5 * m.rows);
      matmul(m.view(), x.data(), 5, y.data(), pool);
      for (int64_t t = 0; t < 5; ++t) {
        for (int64_t r = 0; r < m.rows; ++r) {
          const float* xt = x.data() + t * cols;
          EXPECT_NEAR(y[t * m.rows + r], ref::dot(m.decoded[r], xt),
                      tolerance(type, m.decoded[r], xt))
              << dtype_name(type) << " cols " << cols;
          EXPECT_NEAR(dot_row(type, m.row(r), xt, cols), ref::dot(m.decoded[r], xt),
                      tolerance(type, m.decoded[r], xt));
        }
        // Same bits when the token is alone (other register tile shapes, same tail code).
        std::vector<float> single(m.rows);
        matmul(m.view(), x.data() + t * cols, 1, single.data(), pool);
        EXPECT_EQ(0, std::memcmp(single.data(), y.data() + t * m.rows, m.rows * sizeof(float)));
      }
    }
  }
}

TEST(Matmul, RejectsWeightTypesWithoutKernel) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(1024);
  std::vector<float> x(256), y(1);
  EXPECT_THROW(matmul(WeightView{bytes.data(), DType::Q5_K, 1, 256}, x.data(), 1, y.data(), pool),
               Error);
  EXPECT_THROW(dot_row(DType::IQ4_NL, bytes.data(), x.data(), 32), Error);
  EXPECT_THROW(matmul(WeightView{bytes.data(), DType::Q4_0, 1, 48}, x.data(), 1, y.data(), pool),
               Error);
}

}  // namespace
}  // namespace px
