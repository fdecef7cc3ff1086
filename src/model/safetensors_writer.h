#pragma once
// safetensors writer (tests, `model synth --format hf`): tensors are laid out by decreasing
// element size after a header padded to a multiple of 8 bytes, so every tensor is aligned
// to its element size, as the reference writer does.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace px {

class SafetensorsWriter {
 public:
  void set_metadata(const std::string& key, const std::string& value);
  // `dtype` is a safetensors dtype name ("F32", "BF16", ...); `shape` is row-major, outermost
  // first; `data` must hold exactly the bytes shape x dtype needs. Throws px::Error for an
  // empty, reserved or repeated name, an unknown dtype or a size mismatch.
  void add_tensor(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                  std::vector<uint8_t> data);
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> shape,
                  std::vector<uint8_t> data);

  // The whole file in memory.
  std::vector<uint8_t> serialize() const;
  // Writes the file through a temporary and a rename, so a failed write leaves no half file.
  void write(const std::string& path) const;

  // Bytes of tensor data (what an index's "total_size" counts).
  uint64_t data_bytes() const;
  std::vector<std::string> tensor_names() const;

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    uint32_t bits;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<const Tensor*> file_order() const;
  std::string header() const;  // padded JSON

  std::map<std::string, std::string> metadata_;
  std::vector<Tensor> tensors_;
};

// Writes a model.safetensors.index.json: {"metadata": {"total_size": N}, "weight_map": {...}}
// (through a temporary and a rename).
void write_safetensors_index(const std::string& path,
                             const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size);

}  // namespace px
