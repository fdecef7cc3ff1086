#pragma once
// GGUF reader (versions 2 and 3). The file is memory-mapped; metadata is parsed into
// GgufValue objects, tensor data stays in the mapping. Everything read from the file is
// validated: any problem throws px::Error naming the file and what is wrong.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace px {

class MappedFile;

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_type_name(GgufType type);
bool gguf_type_is_known(uint32_t raw);
bool gguf_type_is_unsigned(GgufType type);  // UINT8..UINT64 (not BOOL)
bool gguf_type_is_signed(GgufType type);    // INT8..INT64
bool gguf_type_is_float(GgufType type);     // FLOAT32, FLOAT64

// One metadata value. Scalars keep their declared type; integers of every width are
// readable through as_int/as_uint (with range checks), floats through as_float.
class GgufValue {
 public:
  GgufType type = GgufType::UINT8;

  // Scalar payloads (only the one matching `type` is meaningful).
  uint64_t uint_value = 0;   // UINT8..UINT64, BOOL
  int64_t int_value = 0;     // INT8..INT64
  double float_value = 0.0;  // FLOAT32, FLOAT64
  std::string string_value;  // STRING

  // Arrays: element type plus exactly one of the vectors below, by element kind.
  GgufType array_type = GgufType::UINT8;
  std::vector<std::string> array_strings;  // STRING elements
  std::vector<int64_t> array_ints;         // integer and BOOL elements (UINT64 above INT64_MAX is an error)
  std::vector<double> array_floats;        // FLOAT32 / FLOAT64 elements
  std::vector<GgufValue> array_values;     // nested ARRAY elements

  bool is_array() const { return type == GgufType::ARRAY; }
  size_t array_size() const;

  // Typed access; each throws px::Error saying which type was found instead.
  int64_t as_int() const;
  uint64_t as_uint() const;
  double as_float() const;  // also accepts integers
  bool as_bool() const;
  const std::string& as_string() const;
  // "UINT32", "ARRAY of STRING", ... for error messages.
  std::string type_description() const;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGML order: dims[0] is the innermost (row length)
  DType type = DType::F32;
  uint64_t offset = 0;        // from the start of the data section
  uint64_t n_bytes = 0;
  int64_t n_elements = 0;
  int64_t rows() const;       // product of dims[1..]
};

// Hash for maps keyed by std::string that are searched with a std::string_view.
struct GgufNameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class GgufFile {
 public:
  // Memory-maps and parses `path`.
  static std::shared_ptr<GgufFile> open(const std::string& path);
  // Parses bytes that stay owned by the caller (the fuzzer's entry point); `name` is used
  // in error messages.
  static std::shared_ptr<GgufFile> parse(std::span<const uint8_t> bytes, std::string name);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }

  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  // Required values: throw naming the file and key when absent or of the wrong kind.
  const GgufValue& get(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  // Optional values.
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Pointer to the tensor's bytes inside the mapping (validated at parse time).
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  void parse_all();

  std::string name_;
  std::span<const uint8_t> bytes_;
  std::unique_ptr<MappedFile> mapping_;  // when opened from a path
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  // name -> index into metadata_ / tensors_ (also how duplicates are detected)
  std::unordered_map<std::string, size_t, GgufNameHash, std::equal_to<>> metadata_index_;
  std::unordered_map<std::string, size_t, GgufNameHash, std::equal_to<>> tensor_index_;
};

}  // namespace px
