#pragma once
// Converting a GGUF model's weights to another tensor type, and the row codecs it shares
// with the synthetic-model writer.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace px {

// Types a model's 2-D weights may be stored in: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K.
bool is_weight_storage_type(DType type);

// GGML's general.file_type id for a model whose weights are mostly `type`
// (F32 0, F16 1, Q4_0 2, Q8_0 7, Q4_K 15 (Q4_K_M), Q6_K 18, BF16 32).
uint32_t ggml_file_type(DType type);

// `wanted`, or F16 when rows of `row_length` elements do not fill whole blocks of `wanted`.
DType storage_type_for_row(DType wanted, int64_t row_length);

// Encodes values.size() / row_length rows into `type`'s bytes (row_length a block multiple).
std::vector<uint8_t> encode_rows(DType type, const std::vector<float>& values, int64_t row_length);
// Decodes n_elements values of `type` (n_elements a multiple of row_length) into floats.
std::vector<float> decode_rows(DType type, const uint8_t* data, int64_t n_elements,
                               int64_t row_length);

// Copies `in` to `out` with every tensor of two or more dimensions converted to `type`
// (tensors whose rows do not fill whole blocks become F16; 1-D tensors are copied as they
// are). Metadata is copied in order with general.file_type updated; tensor order is kept.
void quantize_model(const std::string& in, const std::string& out, DType type);

}  // namespace px
