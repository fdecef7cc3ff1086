#pragma once
// Q8_0 / Q4_0 / F16 / BF16 matrices repacked at load into groups of 16 rows, so that one 512-bit
// instruction serves 16 rows at once (and a quantized block's 16 scales become one vector).
//
// Why: in the file's layout every 32-element block of every row costs a dot product, a
// horizontal conversion and a scalar scale multiply; on two cores that made single-token
// Q8_0 / Q4_0 products compute-bound at 27-36 GB/s while the memory delivers ~58. Interleaved,
// a 16-row block costs 8 dot products and 3 vector ops (Q4_0: plus 8 nibble unpacks).
//
// F16 / BF16 (file layout: 4 rows read side by side, a horizontal sum per row): a group is
// cols columns one after the other, each the 16 rows' values side by side (32 bytes), so one
// thread streams one sequential run and a column is one conversion and one fused multiply-add
// for 16 rows. Its rows sum in kHalfPartials partial sums by column (c mod 4, enough
// independent chains to keep the multiply-adds busy), added as (p0 + p1) + (p2 + p3).
//
// Quantized layout: row groups g = 0, 1, ... (the last one padded with zero rows), each holding its
// blocks b = 0 .. cols/32 - 1 one after the other; a group block is
//   16 fp16 scales (row r's at index r), then the quants:
//   Q8_0: 8 chunks of 64 bytes; chunk k, bytes 4r..4r+3 = row r's elements 4k..4k+3, stored
//         unsigned as q + 128;
//   Q4_0: 4 chunks of 64 bytes; chunk m, bytes 4r..4r+3 = row r's packed bytes qs[4m..4m+3]
//         (low nibbles: elements 4m..4m+3, high nibbles: elements 16+4m..16+4m+3).
// The bytes equal the original (plus the padding rows), so memory use does not grow.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace px {

class QuantizedActivations;

namespace kernels {

constexpr int64_t kInterleaveRows = 16;
constexpr int kHalfPartials = 4;

// Whether matrices of this type are worth interleaving on this CPU: Q8_0 and Q4_0 where it has
// AVX-512 VNNI, F16 and BF16 where it has AVX2 (the targets the interleaved kernels exist for).
// PX_REPACK=0 in the environment turns it off, to compare against the file's layout.
bool interleave_pays_off(DType type);

// Bytes of the interleaved copy of a [rows, cols] matrix (rows rounded up to groups).
size_t interleaved_bytes(DType type, int64_t rows, int64_t cols);

// Bytes of one row group (all of its blocks).
size_t interleaved_group_bytes(DType type, int64_t cols);

// Repacks `rows` rows of `cols` elements (file layout, rows contiguous) into dst, which holds
// interleaved_bytes(type, rows, cols) bytes. Q8_0, Q4_0, F16, BF16.
void interleave_rows(DType type, const void* src, int64_t rows, int64_t cols, void* dst);

struct GroupRange {
  const uint8_t* data;  // group 0
  DType type;
  int64_t rows;         // real rows of the matrix (outputs beyond it are not written)
  int64_t cols;
  int64_t g0, g1;       // groups to compute
};

// y[t * y_stride + r] = dot(W[r], x_t) for the rows of groups [g0, g1) below `rows` and
// t in [t0, t1), with Q8_32 activations. Per (row, token) the arithmetic is fixed (exact
// integer sums per block, one f32 fused multiply-add per block, in block order), so outputs
// do not depend on how rows and tokens are split.
void interleaved_rows(const GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                      int64_t t1, float* y, int64_t y_stride);

// The same for F16 / BF16 groups with f32 activations x [n_tokens, cols]: per (row, token) the
// partial sums of the layout comment, each a chain of fused multiply-adds in column order.
void interleaved_half_rows(const GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                           int64_t y_stride);

namespace scalar {
// The same algorithm in plain C++: the reference for tests and the kernel of every dispatch
// target but AVX3_DL.
void interleaved_rows(const GroupRange& groups, const QuantizedActivations& acts, int64_t t0,
                      int64_t t1, float* y, int64_t y_stride);
void interleaved_half_rows(const GroupRange& groups, const float* x, int64_t t0, int64_t t1, float* y,
                           int64_t y_stride);
}  // namespace scalar

}  // namespace kernels
}  // namespace px
