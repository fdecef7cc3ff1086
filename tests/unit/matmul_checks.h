#pragma once
// Checks shared by the matmul tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_reference.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant.h"

namespace px {

// A [rows, cols] matrix of `type` with n_tokens activations, and the decoded weights the
// double-precision references use. Every 7th row starting at 3 has an all-zero first block.
struct MatmulProblem {
  DType type;
  int64_t rows, cols, n_tokens;
  std::vector<uint8_t> bytes;
  std::vector<float> x;
  std::vector<std::vector<double>> w;  // decoded rows

  MatmulProblem(DType t, int64_t r, int64_t c, int64_t n, uint64_t seed)
      : type(t), rows(r), cols(c), n_tokens(n) {
    ref::Rng rng(seed);
    const size_t rb = row_bytes(t, c);
    bytes.resize(rb * r);
    for (int64_t i = 0; i < r; ++i) {
      auto row = rng.normals(c, 0.02 * (1 + i % 3));
      if (i % 7 == 3) std::fill(row.begin(), row.begin() + std::min<int64_t>(c, 32), 0.0f);
      quantize_row(t, row.data(), bytes.data() + i * rb, c);
      w.push_back(ref::dequantize(t, bytes.data() + i * rb, c));
    }
    x = rng.normals(n * c);
  }
  WeightView view() const { return WeightView{bytes.data(), type, rows, cols}; }
  kernels::RowRange range() const {
    return kernels::RowRange{bytes.data(), row_bytes(type, cols), cols, 0, rows};
  }
};

// Multiplies n_tokens tokens of x at once, then each listed token alone: the same bits, so a
// token's result does not depend on the tiles and panels it was computed in.
inline void expect_tokens_match_batch(const WeightView& w, const float* x, int64_t n_tokens, ThreadPool& pool,
                                      std::initializer_list<int64_t> tokens) {
  std::vector<float> batch(n_tokens * w.rows), single(w.rows);
  matmul(w, x, n_tokens, batch.data(), pool);
  for (int64_t t : tokens) {
    matmul(w, x + t * w.cols, 1, single.data(), pool);
    EXPECT_EQ(0, std::memcmp(single.data(), batch.data() + t * w.rows, w.rows * sizeof(float))) << "token " << t;
  }
}

}  // namespace px
