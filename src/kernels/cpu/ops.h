#pragma once
// Element-wise and row-wise ops of the transformer, on f32 rows.
#include <cstdint>

namespace px {

// y = x / sqrt(mean(x^2) + eps) * weight     (weight may be nullptr: no scaling)
// The sum of squares is accumulated in double; x and y may alias.
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps);

// Rotates pairs of a head of size head_dim in place by angle pos * freq(i).
// freqs[i] for i < head_dim/2 is the angular frequency of pair i (base^(-2i/d), already
// divided by any scaling factors). NORM pairs (2i, 2i+1); NEOX pairs (i, i + head_dim/2).
enum class RopeStyle { Norm, Neox };
void rope(float* head, int64_t head_dim, float pos, const float* freqs, RopeStyle style);

// The same rotation split in two, so that heads sharing a position share the trigonometry:
// cos_out[i], sin_out[i] of angle pos * freqs[i] for i < n_pairs (angle and trig in double),
// then rope_apply rotates one head (head_dim = 2 * n_pairs) with them.
void rope_cos_sin(float pos, const float* freqs, int64_t n_pairs, float* cos_out, float* sin_out);
void rope_apply(float* head, int64_t head_dim, const float* cos, const float* sin, RopeStyle style);

// In place: x = softmax(x), computed as exp(x - max) / sum (sum in double). Entries of
// -inf (masked) become 0; if all are -inf the result is uniform.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// sum_i a[i] * b[i] in f32 (SIMD partial sums: the order depends only on n and the target)
float dot(const float* a, const float* b, int64_t n);

// y[i] += alpha * x[i]
void axpy(float alpha, const float* x, float* y, int64_t n);

// y[i] += x[i]
void add_in_place(float* y, const float* x, int64_t n);

// Keys or values of one KV head stored in blocks of positions (the paged KV cache): position
// p is row p % block_size of blocks[p / block_size], rows row_stride floats apart.
struct KvRows {
  const float* const* blocks;
  int block_size;
  int64_t row_stride;
};

// Keys of one KV head stored transposed in blocks of positions: blocks[p / block_size] is
// [head_dim][block_size], so element d of position p's key is at d * block_size + p % block_size
// (a vector of lanes then holds one dimension of consecutive positions).
struct KeyBlocks {
  const float* const* blocks;
  int block_size;
};

// Attention of the n_q query heads that share one KV head (grouped-query attention), for a
// query seeing positions [0, n_pos): out_g = softmax(scale * K q_g) V, with q and out
// [n_q, head_dim] contiguous and `scores` scratch for n_q * n_pos floats. One call reads each
// key and value once for the whole group.
// Arithmetic, fixed per query whatever else is computed: a score is the sum over dimensions in
// order of fused multiply-adds (positions side by side in vector lanes: no horizontal sums),
// times `scale`; then softmax; then per output element the fused multiply-adds of axpy in
// position order.
void attend_kv_head(const float* q, int n_q, int64_t head_dim, float scale, const KeyBlocks& keys,
                    const KvRows& values, int n_pos, float* scores, float* out);

}  // namespace px
