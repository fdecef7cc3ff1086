// Matrix products: rows are split over the thread pool; within a chunk, rows go in panels
// that stay in L2 while a tile of tokens streams past, so each weight row is read from
// memory once per token tile. Block-quantized weights multiply int8-rounded activations
// (quantized once per call); F32/F16/BF16 weights multiply the f32 activations.
// Every output element is computed by the same instruction sequence whatever the split,
// so results do not depend on the number of threads.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <climits>
#include <span>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/interleaved.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant.h"

namespace px {
namespace {

enum class Family { Float, Q8, KQuant, Interleaved, InterleavedHalf };

Family family_of(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return Family::Float;
    case DType::Q8_0:
    case DType::Q4_0: return Family::Q8;
    case DType::Q4_K:
    case DType::Q6_K: return Family::KQuant;
    default:
      fail("cannot multiply by a {} weight: supported are F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K",
           dtype_name(type));
  }
}

// Cache budgets (bytes) for the activation tile and the weight panel; both sit in L2.
constexpr int64_t kTileBytes = 192 << 10;
constexpr int64_t kPanelBytes = 128 << 10;

struct MatmulJob {
  DType type;
  Family family;
  kernels::RowRange all_rows;
  const uint8_t* interleaved;  // Family::Interleaved / InterleavedHalf: the 16-row groups
  const float* x;
  const QuantizedActivations* acts;
  int64_t n_tokens;
  int64_t tile;   // tokens per tile
  int64_t panel;  // rows per panel
  float* y;
  int64_t y_stride;

  // Rows are handed to threads in units: single rows, or whole groups of interleaved rows.
  bool grouped() const { return family == Family::Interleaved || family == Family::InterleavedHalf; }
  int64_t unit() const { return grouped() ? kernels::kInterleaveRows : 1; }
  int64_t units() const { return (all_rows_count() + unit() - 1) / unit(); }
  int64_t all_rows_count() const { return all_rows.r1; }
  void run_units(int64_t u0, int64_t u1) const {
    run(u0 * unit(), std::min(all_rows_count(), u1 * unit()));
  }

  void run(int64_t row_begin, int64_t row_end) const {
    if (grouped()) return run_groups(row_begin, row_end);
    for (int64_t p0 = row_begin; p0 < row_end; p0 += panel) {
      kernels::RowRange rows = all_rows;
      rows.r0 = p0;
      rows.r1 = std::min(row_end, p0 + panel);
      rows.prefetch_end = row_end;  // keep streaming across panel boundaries
      for (int64_t t0 = 0; t0 < n_tokens; t0 += tile) {
        const int64_t t1 = std::min(n_tokens, t0 + tile);
        switch (family) {
          case Family::Float: kernels::float_rows(type, rows, x, t0, t1, y, y_stride); break;
          case Family::Q8: kernels::q8_rows(type, rows, *acts, t0, t1, y, y_stride); break;
          case Family::KQuant: kernels::kquant_rows(type, rows, *acts, t0, t1, y, y_stride); break;
          case Family::Interleaved:
          case Family::InterleavedHalf: break;  // run_groups
        }
      }
    }
  }

  // row_begin is a multiple of the group size; the last group may be partial.
  void run_groups(int64_t row_begin, int64_t row_end) const {
    const int64_t g_begin = row_begin / kernels::kInterleaveRows;
    const int64_t g_end = (row_end + kernels::kInterleaveRows - 1) / kernels::kInterleaveRows;
    for (int64_t g0 = g_begin; g0 < g_end; g0 += panel) {
      const kernels::GroupRange groups{interleaved, type, all_rows_count(), all_rows.cols, g0,
                                       std::min(g_end, g0 + panel)};
      for (int64_t t0 = 0; t0 < n_tokens; t0 += tile) {
        const int64_t t1 = std::min(n_tokens, t0 + tile);
        if (family == Family::Interleaved) {
          kernels::interleaved_rows(groups, *acts, t0, t1, y, y_stride);
        } else {
          kernels::interleaved_half_rows(groups, x, t0, t1, y, y_stride);
        }
      }
    }
  }
};

MatmulJob make_job(const WeightView& w, Family family, const float* x, const QuantizedActivations* acts,
                   int64_t n_tokens, float* y) {
  if (family == Family::Q8 && w.interleaved) family = Family::Interleaved;
  if (family == Family::Float && w.interleaved) family = Family::InterleavedHalf;
  const size_t bytes_per_row = row_bytes(w.type, w.cols);
  // Panels in rows, or in groups for interleaved matrices.
  const size_t panel_unit_bytes = family == Family::Interleaved || family == Family::InterleavedHalf
                                      ? kernels::interleaved_group_bytes(w.type, w.cols)
                                      : bytes_per_row;
  const int64_t token_bytes =
      family == Family::Float || family == Family::InterleavedHalf ? w.cols * 4
                                                                   : w.cols + w.cols / 16 * 2 + w.cols / 32 * 4;
  return MatmulJob{w.type,
                   family,
                   kernels::RowRange{static_cast<const uint8_t*>(w.data), bytes_per_row, w.cols, 0, w.rows},
                   static_cast<const uint8_t*>(w.interleaved),
                   x,
                   acts,
                   n_tokens,
                   std::clamp<int64_t>(kTileBytes / std::max<int64_t>(token_bytes, 1) / 4 * 4, 4, 64),
                   std::max<int64_t>(1, kPanelBytes / static_cast<int64_t>(panel_unit_bytes)),
                   y,
                   w.rows};
}

// Chunks of at least ~32K multiply-adds: below that, waking threads costs more than it saves.
int64_t row_grain(int64_t cols, int64_t n_tokens) {
  return std::max<int64_t>(4, (32 << 10) / std::max<int64_t>(1, cols * n_tokens));
}

void run(const WeightView& w, Family family, const float* x, const QuantizedActivations* acts,
         int64_t n_tokens, float* y, ThreadPool& pool) {
  const MatmulJob job = make_job(w, family, x, acts, n_tokens, y);
  const int64_t grain = (row_grain(w.cols, n_tokens) + job.unit() - 1) / job.unit();
  // The lambda holds one pointer, so std::function stores it without allocating.
  const MatmulJob* job_ptr = &job;
  pool.parallel_for(job.units(), grain, [job_ptr](int64_t u0, int64_t u1) { job_ptr->run_units(u0, u1); });
}

}  // namespace

ActFormat activation_format(DType weight_type) {
  switch (family_of(weight_type)) {
    case Family::Q8: return ActFormat::Q8_32;
    case Family::KQuant: return ActFormat::Q8_256;
    default:
      fail("{} weights multiply f32 activations: there is no activation format to round to",
           dtype_name(weight_type));
  }
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const Family family = family_of(w.type);
  row_bytes(w.type, w.cols);
  if (w.rows <= 0 || n_tokens <= 0) return;
  if (family == Family::Float) return run(w, family, x, nullptr, n_tokens, y, pool);
  // Reused across calls on this thread: no allocation once it has seen the largest shape.
  thread_local QuantizedActivations acts;
  acts.quantize(activation_format(w.type), x, n_tokens, w.cols, &pool);
  run(w, family, nullptr, &acts, n_tokens, y, pool);
}

void matmul(const WeightView& w, const QuantizedActivations& acts, float* y, ThreadPool& pool) {
  const ActFormat format = activation_format(w.type);
  row_bytes(w.type, w.cols);
  if (acts.format() != format || acts.cols() != w.cols) {
    fail("activations rounded as {} with {} columns do not fit a {} weight with {} columns "
         "(expected {})",
         acts.format() == ActFormat::Q8_32 ? "Q8_32" : "Q8_256", acts.cols(), dtype_name(w.type),
         w.cols, format == ActFormat::Q8_32 ? "Q8_32" : "Q8_256");
  }
  if (w.rows <= 0 || acts.n_tokens() <= 0) return;
  run(w, family_of(w.type), nullptr, &acts, acts.n_tokens(), y, pool);
}

void matmul_shared_input(std::span<const WeightView* const> weights, std::span<float* const> outputs,
                         const QuantizedActivations& acts, ThreadPool& pool) {
  if (weights.size() != outputs.size()) fail("matmul_shared_input: {} weights but {} outputs", weights.size(), outputs.size());
  constexpr size_t kMaxMatrices = 8;
  if (weights.size() > kMaxMatrices) fail("matmul_shared_input takes at most {} matrices", kMaxMatrices);
  // The matrices' rows, one after the other, split over the pool in a single parallel section.
  MatmulJob jobs[kMaxMatrices];
  int64_t first_unit[kMaxMatrices + 1] = {0};  // the matrices' units, one after the other
  int64_t grain = INT64_MAX;
  for (size_t i = 0; i < weights.size(); ++i) {
    const WeightView& w = *weights[i];
    const ActFormat format = activation_format(w.type);
    if (acts.format() != format || acts.cols() != w.cols) {
      fail("activations rounded with {} columns do not fit a {} weight with {} columns", acts.cols(),
           dtype_name(w.type), w.cols);
    }
    jobs[i] = make_job(w, family_of(w.type), nullptr, &acts, acts.n_tokens(), outputs[i]);
    first_unit[i + 1] = first_unit[i] + jobs[i].units();
    grain = std::min(grain, (row_grain(w.cols, acts.n_tokens()) + jobs[i].unit() - 1) / jobs[i].unit());
  }
  const size_t n = weights.size();
  if (first_unit[n] == 0 || acts.n_tokens() <= 0) return;
  pool.parallel_for(first_unit[n], grain, [&](int64_t u0, int64_t u1) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t lo = std::max(u0, first_unit[i]), hi = std::min(u1, first_unit[i + 1]);
      if (lo < hi) jobs[i].run_units(lo - first_unit[i], hi - first_unit[i]);
    }
  });
}

float dot_row(DType type, const void* row, const float* x, int64_t n) {
  const Family family = family_of(type);
  const size_t bytes = row_bytes(type, n);
  if (family == Family::Float) {
    float y = 0;
    kernels::float_rows(type, kernels::RowRange{static_cast<const uint8_t*>(row), bytes, n, 0, 1},
                        x, 0, 1, &y, 1);
    return y;
  }
  // Quantized weights against f32 activations: decode a few blocks at a time and use the
  // f32 kernel on them, summing the pieces in order.
  constexpr int64_t kChunk = 256;
  const DTypeInfo& info = dtype_info(type);
  float decoded[kChunk];
  float sum = 0;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t count = std::min(kChunk, n - begin);
    const auto* src = static_cast<const uint8_t*>(row) +
                      static_cast<size_t>(begin / info.block_size) * info.block_bytes;
    dequantize_row(type, src, decoded, count);
    float part = 0;
    kernels::float_rows(DType::F32,
                        kernels::RowRange{reinterpret_cast<const uint8_t*>(decoded), 0, count, 0, 1},
                        x + begin, 0, 1, &part, 1);
    sum += part;
  }
  return sum;
}

}  // namespace px
