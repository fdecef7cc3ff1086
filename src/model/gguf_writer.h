#pragma once
// GGUF v3 writer: metadata in insertion order, tensors aligned to general.alignment.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/gguf.h"

namespace px {

class GgufWriter {
 public:
  void set_uint32(const std::string& key, uint32_t v);
  void set_int32(const std::string& key, int32_t v);
  void set_uint64(const std::string& key, uint64_t v);
  void set_float32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_strings(const std::string& key, const std::vector<std::string>& v);
  void set_int32s(const std::string& key, const std::vector<int32_t>& v);
  void set_float32s(const std::string& key, const std::vector<float>& v);
  // Copies a value read from another file, keeping its exact type.
  void set_value(const std::string& key, const GgufValue& v);
  bool has(const std::string& key) const;

  // dims in GGML order (dims[0] innermost). `data` must hold exactly row_bytes(...) * rows.
  void add_tensor(const std::string& name, std::vector<int64_t> dims, DType type,
                  std::vector<uint8_t> data);

  // Writes the file (through a temporary and a rename, so a failed write leaves no half file).
  void write(const std::string& path) const;

 private:
  std::vector<GgufKeyValue> metadata_;
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    DType type;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
  void put(const std::string& key, GgufValue v);
};

}  // namespace px
