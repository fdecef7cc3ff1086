#pragma once
// Hugging Face safetensors reader: one file (SafetensorsFile) or a model directory with an
// optional sharded index (SafetensorsModel). Files are memory-mapped; the JSON header is
// validated against the rules of the reference implementation (huggingface/safetensors):
//   8-byte little-endian header size N (at most 100 MB), N bytes of UTF-8 JSON starting with
//   '{', an object of tensor name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an
//   optional "__metadata__" object of strings; offsets are relative to the data section,
//   end - begin = elements x dtype size, and the tensors tile the data section exactly (no
//   overlap, no hole, nothing after the last tensor). Duplicate keys are an error.
// Any violation throws px::Error naming the file and the problem.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace px {

class MappedFile;

// A safetensors element type. `bits` is per element (4 and 6 for the sub-byte float types).
struct SafetensorsDTypeInfo {
  std::string_view name;     // as written in files: "F32", "BF16", "F8_E4M3", ...
  uint32_t bits;
  std::optional<DType> ggml; // the matching GGML type, when there is one
};

// Info for a dtype name (case-sensitive, as the format defines), or nullptr when unknown.
const SafetensorsDTypeInfo* safetensors_dtype_info(std::string_view name);
// The safetensors name of a GGML type ("F32", "F16", "BF16", "I8", ...); throws px::Error
// for types safetensors cannot hold (the block-quantized ones).
std::string_view safetensors_dtype_name(DType type);

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;      // as in the file
  std::optional<DType> type;   // GGML equivalent of dtype_name, if any (F32, F16, BF16, I32, ...)
  std::vector<int64_t> shape;  // row-major, outermost first: a Linear weight is [out, in]
  uint64_t begin = 0;          // byte range in the data section (after the header)
  uint64_t end = 0;
  int64_t n_elements = 0;

  uint64_t n_bytes() const { return end - begin; }
  // The shape in GGML order (innermost first), as GgufTensorInfo::dims.
  std::vector<int64_t> ggml_dims() const { return {shape.rbegin(), shape.rend()}; }
};

// Hash for maps keyed by std::string that are searched with a std::string_view.
struct SafetensorsNameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

  // Memory-maps and parses `path`.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // Parses bytes that stay owned by the caller (tests, fuzzing); `name` is used in errors.
  static std::shared_ptr<SafetensorsFile> parse(std::span<const uint8_t> bytes, std::string name);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& name() const { return name_; }
  uint64_t file_size() const { return bytes_.size(); }
  uint64_t header_size() const { return header_size_; }   // N
  uint64_t data_offset() const { return 8 + header_size_; }  // where the data section starts

  // Tensors in file order (ascending offsets).
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  // Like find, but throws naming the file and tensor when absent.
  const SafetensorsTensor& get(std::string_view name) const;
  // The tensor's bytes inside the mapping (validated at parse time). The format does not
  // promise any alignment: files written by the reference writer align every tensor to its
  // element size, older files may not.
  std::span<const uint8_t> data(const SafetensorsTensor& tensor) const;
  // The tensor's GGML type when our kernels can compute with it; otherwise throws naming
  // the file, tensor and dtype.
  DType compute_type(const SafetensorsTensor& tensor) const;

  // The "__metadata__" strings (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  void parse_all();

  std::string name_;
  std::span<const uint8_t> bytes_;
  std::unique_ptr<MappedFile> mapping_;  // when opened from a path
  uint64_t header_size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t, SafetensorsNameHash, std::equal_to<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor found in a model: the file holding it (kept alive by the reference) and its entry.
struct SafetensorsTensorRef {
  std::shared_ptr<const SafetensorsFile> file;
  const SafetensorsTensor* tensor = nullptr;

  explicit operator bool() const { return tensor != nullptr; }
  std::span<const uint8_t> data() const { return file->data(*tensor); }
};

// The weights of a Hugging Face model: a single model.safetensors, or shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard file}}).
// Shards are mapped lazily, when one of their tensors is first looked up, so a node that
// runs a few layers maps only the shards holding them. When a shard is opened it is checked
// against the index: it must hold every tensor the index assigns to it, and no tensor the
// index assigns to another shard. Lookups are thread-safe.
class SafetensorsModel {
 public:
  static constexpr const char* kSingleFileName = "model.safetensors";
  static constexpr const char* kIndexFileName = "model.safetensors.index.json";

  // `path` is a model directory (model.safetensors is preferred over the index, as the
  // transformers library does), a .safetensors file, or an index .json file. For an index,
  // every shard it names must be a plain file name in the same directory, and must exist.
  static std::shared_ptr<SafetensorsModel> open(const std::string& path);

  const std::string& name() const { return name_; }  // the file or index that was opened
  bool is_sharded() const { return sharded_; }
  // Paths of the weight files (one when not sharded), sorted by file name.
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  // All tensor names, sorted.
  std::vector<std::string> tensor_names() const;
  bool contains(std::string_view name) const { return tensor_shard_.contains(name); }
  // The shard path that holds `name`, or nullptr.
  const std::string* shard_of(std::string_view name) const;
  // The index's "metadata" object as given (e.g. {"total_size": 123}); informational only.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }

  // Looks a tensor up, mapping its shard on first use; an empty ref when the model has no
  // such tensor.
  SafetensorsTensorRef find(std::string_view name) const;
  // Like find, but throws naming the model and tensor when absent.
  SafetensorsTensorRef get(std::string_view name) const;
  // Maps and validates every shard (for `model info`-style checks).
  void open_all_shards() const;
  // How many shards are mapped so far.
  size_t open_shard_count() const;

 private:
  SafetensorsModel() = default;
  static std::shared_ptr<SafetensorsModel> open_single(const std::string& path);
  static std::shared_ptr<SafetensorsModel> open_index(const std::string& path);
  std::shared_ptr<const SafetensorsFile> shard(size_t index) const;  // opens on first use

  std::string name_;
  bool sharded_ = false;
  std::vector<std::string> shard_paths_;
  std::unordered_map<std::string, size_t, SafetensorsNameHash, std::equal_to<>> tensor_shard_;
  std::vector<std::vector<std::string>> shard_tensors_;  // per shard: the tensors the index puts there
  std::map<std::string, std::string> index_metadata_;
  mutable std::mutex mutex_;  // guards shards_
  mutable std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
};

}  // namespace px
