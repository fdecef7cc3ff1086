// Matrix products, scalar version: rows are split over the thread pool; within a chunk of
// rows, tokens go in tiles so each weight row is decoded once per tile. Every output element
// is one dot product computed the same way whatever the split, so results do not depend on
// the number of threads.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kernels/cpu/quant.h"

namespace px {
namespace {

// Fixed-order f32 dot product: 8 interleaved partial sums, combined pairwise.
struct Partials8 {
  float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // n must be a multiple of 8 for the order to stay aligned across calls.
  void add(const float* a, const float* b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) p[k] += a[i + k] * b[i + k];
    }
    for (int k = 0; i < n; ++i, ++k) p[k] += a[i] * b[i];
  }
  float total() const {
    return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
  }
};

float dot_f32(const float* a, const float* b, int64_t n) {
  Partials8 acc;
  acc.add(a, b, n);
  return acc.total();
}

// Elements decoded at a time by dot_row: a whole number of blocks of every type.
constexpr int64_t kDecodeChunk = 256;

const DTypeInfo& computable_info(DType type) {
  const DTypeInfo& info = dtype_info(type);
  if (!info.computable) {
    fail("cannot multiply by a {} weight: supported are F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K",
         info.name);
  }
  return info;
}

}  // namespace

float dot_row(DType type, const void* row, const float* x, int64_t n) {
  const DTypeInfo& info = computable_info(type);
  row_bytes(type, n);
  if (type == DType::F32) return dot_f32(static_cast<const float*>(row), x, n);
  float decoded[kDecodeChunk];
  Partials8 acc;
  const auto* bytes = static_cast<const uint8_t*>(row);
  for (int64_t begin = 0; begin < n; begin += kDecodeChunk) {
    const int64_t count = std::min(kDecodeChunk, n - begin);
    const size_t offset = static_cast<size_t>(begin / info.block_size) * info.block_bytes;
    dequantize_row(type, bytes + offset, decoded, count);
    acc.add(decoded, x + begin, count);
  }
  return acc.total();
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  computable_info(w.type);
  const size_t bytes_per_row = row_bytes(w.type, w.cols);
  if (w.rows <= 0 || n_tokens <= 0) return;
  const auto* base = static_cast<const uint8_t*>(w.data);
  // A tile of tokens whose activations stay in L2 (~256 KiB) while a row is reused.
  const int64_t tile = std::clamp<int64_t>((256 << 10) / (w.cols * 4), 1, 64);
  pool.parallel_for(w.rows, 16, [&](int64_t row_begin, int64_t row_end) {
    thread_local std::vector<float> decoded;
    if (static_cast<int64_t>(decoded.size()) < w.cols) decoded.resize(w.cols);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += tile) {
      const int64_t t1 = std::min(n_tokens, t0 + tile);
      for (int64_t r = row_begin; r < row_end; ++r) {
        const uint8_t* row = base + static_cast<size_t>(r) * bytes_per_row;
        const float* wf = reinterpret_cast<const float*>(row);
        if (w.type != DType::F32) {
          dequantize_row(w.type, row, decoded.data(), w.cols);
          wf = decoded.data();
        }
        for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = dot_f32(wf, x + t * w.cols, w.cols);
      }
    }
  });
}

}  // namespace px
