// matmul_shared_input: several matrices over one rounded input in one parallel section give
// exactly what separate matmul calls give.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"

namespace px {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  WeightView view;
};

Matrix random_matrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> row(cols);
  Matrix m;
  const size_t row_size = row_bytes(type, cols);
  m.bytes.resize(row_size * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    quantize_row(type, row.data(), m.bytes.data() + r * row_size, cols);
  }
  m.view = WeightView{m.bytes.data(), type, rows, cols};
  return m;
}

TEST(MatmulSharedInput, EqualsSeparateCallsBitForBit) {
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t cols = 512;
    const Matrix a = random_matrix(type, 37, cols, 1), b = random_matrix(type, 8, cols, 2),
                 c = random_matrix(type, 101, cols, 3);
    for (int64_t n_tokens : {1, 5}) {
      std::vector<float> x(n_tokens * cols);
      std::mt19937 rng(4);
      std::normal_distribution<float> normal;
      for (float& v : x) v = normal(rng);
      for (int threads : {1, 3}) {
        ThreadPool pool(threads);
        QuantizedActivations acts;
        acts.quantize(activation_format(type), x.data(), n_tokens, cols);
        std::vector<float> ya(37 * n_tokens), yb(8 * n_tokens), yc(101 * n_tokens);
        const WeightView* weights[] = {&a.view, &b.view, &c.view};
        float* outputs[] = {ya.data(), yb.data(), yc.data()};
        matmul_shared_input(weights, outputs, acts, pool);
        std::vector<float> sa(ya.size()), sb(yb.size()), sc(yc.size());
        matmul(a.view, x.data(), n_tokens, sa.data(), pool);
        matmul(b.view, x.data(), n_tokens, sb.data(), pool);
        matmul(c.view, x.data(), n_tokens, sc.data(), pool);
        EXPECT_EQ(ya, sa) << dtype_name(type) << " tokens " << n_tokens << " threads " << threads;
        EXPECT_EQ(yb, sb) << dtype_name(type);
        EXPECT_EQ(yc, sc) << dtype_name(type);
      }
    }
  }
}

TEST(MatmulSharedInput, RejectsMismatchedShapesAndFormats) {
  ThreadPool pool(1);
  const Matrix q8 = random_matrix(DType::Q8_0, 4, 256, 1), k = random_matrix(DType::Q4_K, 4, 256, 2);
  std::vector<float> x(256, 0.5f), y(4);
  QuantizedActivations acts;
  acts.quantize(activation_format(DType::Q8_0), x.data(), 1, 256);
  const WeightView* mixed[] = {&q8.view, &k.view};
  float* outputs[] = {y.data(), y.data()};
  EXPECT_THROW(matmul_shared_input(mixed, outputs, acts, pool), Error);
  const WeightView* one[] = {&q8.view};
  EXPECT_THROW(matmul_shared_input(one, outputs, acts, pool), Error);  // 1 weight, 2 outputs
}

}  // namespace
}  // namespace px
