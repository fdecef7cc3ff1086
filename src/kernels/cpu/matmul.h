#pragma once
// Matrix products of a weight matrix (any computable dtype, straight from the mmap) with
// f32 activations.
#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "kernels/cpu/activations.h"

namespace px {

class ThreadPool;

// A weight matrix of `rows` rows of `cols` elements each, rows stored contiguously.
struct WeightView {
  const void* data = nullptr;
  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  // Optional copy of the same Q8_0 / Q4_0 / F16 / BF16 matrix in 16-row groups
  // (kernels/cpu/interleaved.h), made at load where it is faster; matmul then reads it instead
  // of `data`.
  const void* interleaved = nullptr;
};

// y[t * rows + r] = sum_c W[r, c] * x[t * cols + c]   for t < n_tokens, r < rows.
// x: [n_tokens, cols] f32, y: [n_tokens, rows] f32.
//
// Numerics: F32/F16/BF16 weights multiply the f32 activations (f32 accumulation). For
// Q8_0/Q4_0 (Q4_K/Q6_K) weights the activations are first rounded to int8 with one f32
// scale per 32 (256) elements, as llama.cpp does; each block is then an exact integer dot
// product. The extra error is at most half a step (amax/254) per activation element.
// Every output is computed by the same instruction sequence whatever the thread count and
// whichever other tokens share the call (bit-identical for a given SIMD target).
// Threads: rows are split over `pool`. Memory: a per-thread buffer for the rounded
// activations grows to the largest [n_tokens, cols] seen; nothing else is allocated.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The activation rounding matmul applies for a block-quantized weight type (Q8_32 for
// Q8_0/Q4_0, Q8_256 for Q4_K/Q6_K); throws for F32/F16/BF16, which use f32 activations.
ActFormat activation_format(DType weight_type);

// matmul with activations already rounded by acts.quantize(activation_format(w.type), x, ...),
// so matrices that multiply the same x (Q/K/V, gate/up) round it once. Bit-identical to
// matmul(w, x, ...). Throws when the format or column count does not fit w.
void matmul(const WeightView& w, const QuantizedActivations& acts, float* y, ThreadPool& pool);

// Several block-quantized matrices multiplying the same rounded input (Q/K/V, gate/up) in one
// parallel section: outputs[i] = weights[i] x acts, bit-identical to separate matmul calls.
// Every weight must take acts' format and column count; at most 8 matrices.
void matmul_shared_input(std::span<const WeightView* const> weights, std::span<float* const> outputs,
                         const QuantizedActivations& acts, ThreadPool& pool);

// Dot product of one weight row (n elements of `type`) with f32 x, in f32 without rounding
// x (so for block-quantized types it differs slightly from matmul). Not the fast path.
float dot_row(DType type, const void* row, const float* x, int64_t n);

}  // namespace px
