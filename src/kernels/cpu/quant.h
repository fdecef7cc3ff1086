#pragma once
// GGUF block layouts and row-wise (de)quantization. The structs are the exact on-disk bytes.
#include <cstdint>

#include "core/dtype.h"

namespace px {

constexpr int kQK = 32;      // block size of Q4_0 / Q8_0
constexpr int kQK_K = 256;   // super-block size of the K-quants

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;            // fp16 scale
  uint8_t qs[kQK / 2];   // element j in low nibble of qs[j], element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_K {
  uint16_t d;              // fp16 super-block scale for the 6-bit scales
  uint16_t dmin;           // fp16 super-block scale for the 6-bit mins
  uint8_t scales[12];      // 8 scales and 8 mins, 6 bits each, packed
  uint8_t qs[kQK_K / 2];   // 4-bit quants
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 8-bit scales of 16-element groups
  uint16_t d;                 // fp16 super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210);

// n must be a multiple of the type's block size; types we cannot compute throw px::Error.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);
// Q8_0 and Q4_0 round like ggml's reference quantizers. Q4_K / Q6_K use a simpler one-pass
// search than ggml (per sub-block min/max, resp. signed max, then 6/8-bit scales relative to
// the super-block's largest): valid blocks, somewhat larger error than llama-quantize's.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

}  // namespace px
