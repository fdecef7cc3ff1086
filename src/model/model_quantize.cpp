#include "model/model_quantize.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu/quant.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"

namespace px {

bool is_weight_storage_type(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

uint32_t ggml_file_type(DType type) {
  switch (type) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return 15;
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default:
      fail("tensor type {} cannot be a model's weight type (accepted: f32, f16, bf16, q8_0, "
           "q4_0, q4_k, q6_k)", dtype_name(type));
  }
}

DType storage_type_for_row(DType wanted, int64_t row_length) {
  return row_length % dtype_info(wanted).block_size == 0 ? wanted : DType::F16;
}

std::vector<uint8_t> encode_rows(DType type, const std::vector<float>& values,
                                 int64_t row_length) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (row_length <= 0 || n % row_length != 0) {
    fail("cannot encode {} values as rows of {}", n, row_length);
  }
  const size_t bytes_per_row = row_bytes(type, row_length);  // throws on a partial block
  const int64_t rows = n / row_length;
  std::vector<uint8_t> out(bytes_per_row * static_cast<size_t>(rows));
  switch (type) {
    case DType::F32:
      std::memcpy(out.data(), values.data(), out.size());
      break;
    case DType::F16:
    case DType::BF16: {
      auto* dst = reinterpret_cast<uint16_t*>(out.data());
      for (int64_t i = 0; i < n; ++i) {
        dst[i] = type == DType::F16 ? f32_to_fp16(values[i]) : f32_to_bf16(values[i]);
      }
      break;
    }
    default:
      for (int64_t r = 0; r < rows; ++r) {
        quantize_row(type, values.data() + r * row_length, out.data() + r * bytes_per_row,
                     row_length);
      }
  }
  return out;
}

std::vector<float> decode_rows(DType type, const uint8_t* data, int64_t n_elements,
                               int64_t row_length) {
  if (row_length <= 0 || n_elements % row_length != 0) {
    fail("cannot decode {} values as rows of {}", n_elements, row_length);
  }
  const size_t bytes_per_row = row_bytes(type, row_length);
  std::vector<float> out(static_cast<size_t>(n_elements));
  switch (type) {
    case DType::F32:
      std::memcpy(out.data(), data, out.size() * sizeof(float));
      break;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n_elements; ++i) {
        uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);  // the mapping need not be 2-byte aligned
        out[i] = type == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    default:
      for (int64_t r = 0; r < n_elements / row_length; ++r) {
        dequantize_row(type, data + r * bytes_per_row, out.data() + r * row_length, row_length);
      }
  }
  return out;
}

void quantize_model(const std::string& in, const std::string& out, DType type) {
  const uint32_t file_type = ggml_file_type(type);  // also rejects types weights cannot use
  const auto file = GgufFile::open(in);

  GgufWriter writer;
  bool wrote_file_type = false;
  for (const auto& kv : file->metadata()) {
    if (kv.key == "general.file_type") {
      writer.set_uint32(kv.key, file_type);
      wrote_file_type = true;
    } else {
      writer.set_value(kv.key, kv.value);
    }
  }
  if (!wrote_file_type) writer.set_uint32("general.file_type", file_type);
  if (!writer.has("general.alignment")) writer.set_uint32("general.alignment", 32);

  int fallbacks = 0;
  for (const auto& t : file->tensors()) {
    const uint8_t* src = file->tensor_data(t);
    const bool is_matrix = t.dims.size() >= 2;
    const DType target = is_matrix ? storage_type_for_row(type, t.dims[0]) : t.type;
    if (target == t.type) {  // 1-D tensors, or already the wanted type: copy the bytes
      writer.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(src, src + t.n_bytes));
      continue;
    }
    if (target != type) {
      ++fallbacks;
      spdlog::info("{}: row length {} is not a multiple of the {} block size {}; storing F16",
                   t.name, t.dims[0], dtype_name(type), dtype_info(type).block_size);
    }
    std::vector<float> values;
    try {
      values = decode_rows(t.type, src, t.n_elements, t.dims[0]);
    } catch (const Error& e) {
      fail("{}: cannot convert tensor '{}' from {}: {}", in, t.name, dtype_name(t.type), e.what());
    }
    writer.add_tensor(t.name, t.dims, target, encode_rows(target, values, t.dims[0]));
  }
  writer.write(out);
  spdlog::info("wrote {} ({} tensors, {} stored as F16 fallback)", out, file->tensors().size(),
               fallbacks);
}

}  // namespace px
