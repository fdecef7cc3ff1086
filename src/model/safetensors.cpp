// safetensors reader. Nothing from the header is trusted before it is checked: sizes are
// checked against the bytes there are, arithmetic is overflow-checked, and the tensors must
// tile the data section exactly, so a tensor's bytes always lie inside the mapping.
#include "model/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/hf_json.h"

namespace px {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the safetensors reader reads the little-endian header size directly");

using json = nlohmann::json;

constexpr size_t kMaxDims = 16;
constexpr size_t kMaxNameLength = 64 * 1024;
constexpr int kMaxJsonDepth = 8;  // a valid header nests 3 deep (object, entry, shape)
constexpr std::string_view kMetadataKey = "__metadata__";

constexpr std::array<SafetensorsDTypeInfo, 22> kDTypes{{
    {"BOOL", 8, std::nullopt},
    {"U8", 8, std::nullopt},
    {"I8", 8, DType::I8},
    {"F8_E5M2", 8, std::nullopt},
    {"F8_E4M3", 8, std::nullopt},
    {"F8_E8M0", 8, std::nullopt},
    {"F8_E4M3FNUZ", 8, std::nullopt},
    {"F8_E5M2FNUZ", 8, std::nullopt},
    {"I16", 16, DType::I16},
    {"U16", 16, std::nullopt},
    {"F16", 16, DType::F16},
    {"BF16", 16, DType::BF16},
    {"I32", 32, DType::I32},
    {"U32", 32, std::nullopt},
    {"F32", 32, DType::F32},
    {"F64", 64, DType::F64},
    {"I64", 64, DType::I64},
    {"U64", 64, std::nullopt},
    {"C64", 64, std::nullopt},
    {"F4", 4, std::nullopt},
    {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt},
}};

std::string format_shape(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Reads one entry of the header: the dtype, shape and offsets of `name`, checked alone.
class EntryReader {
 public:
  EntryReader(const std::string& file, const std::string& name, uint64_t data_size)
      : file_(file), name_(escape_for_message(name)), data_size_(data_size) {}

  SafetensorsTensor read(const json& entry, std::string name) {
    if (!entry.is_object()) {
      fail("{}: tensor '{}' must be an object with dtype, shape and data_offsets, found {}",
           file_, name_, entry.type_name());
    }
    SafetensorsTensor t;
    t.name = std::move(name);
    const SafetensorsDTypeInfo& dtype = read_dtype(field(entry, "dtype"));
    t.dtype_name = std::string(dtype.name);
    t.type = dtype.ggml;
    t.shape = read_shape(field(entry, "shape"));
    t.n_elements = element_count(t.shape);
    const uint64_t n_bytes = byte_count(t, dtype);
    read_offsets(field(entry, "data_offsets"), t);
    if (t.end - t.begin != n_bytes) {
      fail("{}: tensor '{}' has data_offsets [{}, {}] ({} bytes), but its shape {} of {} needs {} "
           "bytes",
           file_, name_, t.begin, t.end, t.end - t.begin, format_shape(t.shape), t.dtype_name,
           n_bytes);
    }
    if (t.end > data_size_) {
      fail("{}: tensor '{}' data_offsets [{}, {}] lie outside the {}-byte data section; the file "
           "may be truncated",
           file_, name_, t.begin, t.end, data_size_);
    }
    return t;
  }

 private:
  const json& field(const json& entry, const char* key) const {
    const auto it = entry.find(key);
    if (it == entry.end()) fail("{}: tensor '{}' has no \"{}\"", file_, name_, key);
    return *it;
  }

  const SafetensorsDTypeInfo& read_dtype(const json& v) const {
    if (!v.is_string()) fail("{}: tensor '{}' dtype must be a string, found {}", file_, name_, v.type_name());
    const auto& s = v.get_ref<const std::string&>();
    const SafetensorsDTypeInfo* info = safetensors_dtype_info(s);
    if (!info) {
      std::vector<std::string_view> known;
      for (const auto& d : kDTypes) known.push_back(d.name);
      fail("{}: tensor '{}' has unknown dtype \"{}\" (known: {})", file_, name_, escape_for_message(s),
           fmt::join(known, ", "));
    }
    return *info;
  }

  // A JSON number that is a non-negative integer; `what` names it in errors.
  uint64_t read_unsigned(const json& v, std::string_view what) const {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) {
      fail("{}: tensor '{}' {} is {}; it must not be negative", file_, name_, what, v.get<int64_t>());
    }
    if (v.is_number_float()) {
      fail("{}: tensor '{}' {} is {}; it must be an integer (below 2^64)", file_, name_, what, v.dump());
    }
    fail("{}: tensor '{}' {} must be an integer, found {}", file_, name_, what, v.type_name());
  }

  std::vector<int64_t> read_shape(const json& v) const {
    if (!v.is_array()) fail("{}: tensor '{}' shape must be an array, found {}", file_, name_, v.type_name());
    if (v.size() > kMaxDims) {
      fail("{}: tensor '{}' shape has {} dimensions, more than the supported {}", file_, name_,
           v.size(), kMaxDims);
    }
    std::vector<int64_t> shape;
    for (size_t i = 0; i < v.size(); ++i) {
      const uint64_t d = read_unsigned(v[i], fmt::format("shape[{}]", i));
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("{}: tensor '{}' shape[{}] = {} is too large", file_, name_, i, d);
      }
      shape.push_back(static_cast<int64_t>(d));
    }
    return shape;
  }

  int64_t element_count(const std::vector<int64_t>& shape) const {
    int64_t n = 1;  // a shape of [] is a scalar
    for (int64_t d : shape) {
      if (__builtin_mul_overflow(n, d, &n)) {
        fail("{}: tensor '{}' has shape {} whose element count overflows a 64-bit integer", file_,
             name_, format_shape(shape));
      }
    }
    return n;
  }

  uint64_t byte_count(const SafetensorsTensor& t, const SafetensorsDTypeInfo& dtype) const {
    uint64_t bits = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(t.n_elements), uint64_t{dtype.bits}, &bits)) {
      fail("{}: tensor '{}' of shape {} and dtype {} has a byte size that overflows 64 bits", file_,
           name_, format_shape(t.shape), t.dtype_name);
    }
    if (bits % 8 != 0) {
      fail("{}: tensor '{}' of shape {} and dtype {} does not fill whole bytes ({} bits)", file_,
           name_, format_shape(t.shape), t.dtype_name, bits);
    }
    return bits / 8;
  }

  void read_offsets(const json& v, SafetensorsTensor& t) const {
    if (!v.is_array() || v.size() != 2) {
      fail("{}: tensor '{}' data_offsets must be an array [begin, end], found {}", file_, name_,
           v.is_array() ? fmt::format("an array of {}", v.size()) : std::string(v.type_name()));
    }
    t.begin = read_unsigned(v[0], "data_offsets begin");
    t.end = read_unsigned(v[1], "data_offsets end");
    if (t.begin > t.end) {
      fail("{}: tensor '{}' data_offsets [{}, {}] begin after they end", file_, name_, t.begin, t.end);
    }
  }

  const std::string& file_;
  std::string name_;
  uint64_t data_size_;
};

}  // namespace

const SafetensorsDTypeInfo* safetensors_dtype_info(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string_view safetensors_dtype_name(DType type) {
  for (const auto& d : kDTypes) {
    if (d.ggml == type) return d.name;
  }
  fail("type {} cannot be stored in a safetensors file", dtype_name(type));
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name_ = path;
  file->mapping_ = MappedFile::open(path, "safetensors file");
  file->bytes_ = file->mapping_->bytes();
  file->parse_all();
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes,
                                                        std::string name) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  file->parse_all();
  return file;
}

SafetensorsFile::~SafetensorsFile() = default;

void SafetensorsFile::parse_all() {
  const uint64_t size = bytes_.size();
  if (size < 8) {
    fail("{}: file is too small ({} bytes) to be a safetensors file (8-byte header size first)",
         name_, size);
  }
  std::memcpy(&header_size_, bytes_.data(), 8);
  if (header_size_ > kMaxHeaderBytes) {
    fail("{}: header size {} is over the limit of {} bytes; this is not a safetensors file", name_,
         header_size_, kMaxHeaderBytes);
  }
  if (header_size_ > size - 8) {
    fail("{}: header size {} is larger than the {} bytes that follow it; the file is truncated or "
         "not a safetensors file",
         name_, header_size_, size - 8);
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes_.data() + 8), header_size_);
  if (header.empty() || header.front() != '{') {
    fail("{}: header does not start with '{{' (found {}); this is not a safetensors file", name_,
         header.empty() ? std::string("an empty header")
                        : fmt::format("byte 0x{:02x}", static_cast<unsigned char>(header[0])));
  }
  const json root = parse_strict_json(header, name_, "the header", kMaxJsonDepth);
  if (!root.is_object()) fail("{}: header must be a JSON object, found {}", name_, root.type_name());

  const uint64_t data_size = size - 8 - header_size_;
  tensors_.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) {
        fail("{}: __metadata__ must be an object of strings, found {}", name_, value.type_name());
      }
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          fail("{}: __metadata__ value of \"{}\" must be a string, found {}", name_, escape_for_message(mkey),
               mvalue.type_name());
        }
        metadata_.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    if (key.empty()) fail("{}: header has a tensor with an empty name", name_);
    if (key.size() > kMaxNameLength) {
      fail("{}: tensor name '{}' is longer than {} bytes", name_, escape_for_message(key), kMaxNameLength);
    }
    tensors_.push_back(EntryReader(name_, key, data_size).read(value, key));
  }

  // The data section must be tiled exactly, in offset order: this rules out overlapping
  // tensors (aliasing), holes (room for hidden content) and trailing bytes.
  std::sort(tensors_.begin(), tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : tensors_) {
    if (t.begin < covered) {
      fail("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", name_, escape_for_message(previous->name),
           previous->begin, previous->end, escape_for_message(t.name), t.begin, t.end);
    }
    if (t.begin > covered) {
      fail("{}: data bytes [{}, {}) before tensor '{}' belong to no tensor; the data section must "
           "hold the tensors back to back",
           name_, covered, t.begin, escape_for_message(t.name));
    }
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size) {
    fail("{}: the last {} bytes of the data section (after offset {}) belong to no tensor", name_,
         data_size - covered, covered);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::get(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (!t) fail("{}: missing tensor '{}'", name_, name);
  return *t;
}

std::span<const uint8_t> SafetensorsFile::data(const SafetensorsTensor& tensor) const {
  return bytes_.subspan(data_offset() + tensor.begin, tensor.n_bytes());
}

DType SafetensorsFile::compute_type(const SafetensorsTensor& tensor) const {
  if (!tensor.type || !dtype_info(*tensor.type).computable) {
    fail("{}: tensor '{}' has dtype {}, which is not supported for compute (supported: F32, F16, "
         "BF16)",
         name_, tensor.name, tensor.dtype_name);
  }
  return *tensor.type;
}

}  // namespace px
