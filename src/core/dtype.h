#pragma once
// Tensor element types with GGML's numbering and block layouts, as stored in GGUF files.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace px {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
};

struct DTypeInfo {
  std::string_view name;
  int64_t block_size;   // elements per block
  size_t block_bytes;   // bytes per block
  bool computable;      // our kernels can dequantize and multiply it
};

// Info for a GGML type id, or nullptr when the id is unknown (a file must be rejected then).
const DTypeInfo* dtype_info(uint32_t ggml_type);
const DTypeInfo& dtype_info(DType type);
std::string_view dtype_name(DType type);
// Parses "f32", "q8_0", ... (case-insensitive); throws px::Error listing the accepted names.
DType parse_dtype(std::string_view name);

// Bytes of a row of n elements; throws when n is not a multiple of the block size.
size_t row_bytes(DType type, int64_t n);

}  // namespace px
