// GGUF v3 writer. Values are range-checked against their declared types when written, so
// a hand-built GgufValue cannot produce a file that the reader would read differently.
#include "model/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/file_write.h"

namespace px {
namespace {

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxNameLength = 64 * 1024;
constexpr size_t kMaxDims = 4;


class ByteSink {
 public:
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const char*>(&value);
    bytes_.append(p, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    bytes_.append(s.data(), s.size());
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

template <typename T>
T checked_int(std::string_view key, GgufType type, int64_t value) {
  if (value < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (value > 0 && static_cast<uint64_t>(value) > std::numeric_limits<T>::max())) {
    fail("metadata key '{}': value {} does not fit in {}", key, value, gguf_type_name(type));
  }
  return static_cast<T>(value);
}

template <typename T>
T checked_uint(std::string_view key, GgufType type, uint64_t value) {
  if (value > std::numeric_limits<T>::max()) {
    fail("metadata key '{}': value {} does not fit in {}", key, value, gguf_type_name(type));
  }
  return static_cast<T>(value);
}

// One integer array element (stored as int64 in GgufValue) in its declared width.
void put_int_element(ByteSink& out, std::string_view key, GgufType type, int64_t x) {
  switch (type) {
    case GgufType::UINT8: out.put(checked_int<uint8_t>(key, type, x)); break;
    case GgufType::INT8: out.put(checked_int<int8_t>(key, type, x)); break;
    case GgufType::UINT16: out.put(checked_int<uint16_t>(key, type, x)); break;
    case GgufType::INT16: out.put(checked_int<int16_t>(key, type, x)); break;
    case GgufType::UINT32: out.put(checked_int<uint32_t>(key, type, x)); break;
    case GgufType::INT32: out.put(checked_int<int32_t>(key, type, x)); break;
    case GgufType::UINT64: out.put(checked_int<uint64_t>(key, type, x)); break;
    case GgufType::INT64: out.put(x); break;
    case GgufType::BOOL: out.put<uint8_t>(x != 0 ? 1 : 0); break;
    default: fail("metadata key '{}': {} is not an integer type", key, gguf_type_name(type));
  }
}

// Element type, count and elements of an array value (no leading ARRAY tag).
void put_array_body(ByteSink& out, std::string_view key, const GgufValue& v) {
  const GgufType et = v.array_type;
  if (!gguf_type_is_known(static_cast<uint32_t>(et))) {
    fail("metadata key '{}': unknown array element type {}", key, static_cast<uint32_t>(et));
  }
  out.put(static_cast<uint32_t>(et));
  out.put<uint64_t>(v.array_size());
  switch (et) {
    case GgufType::STRING:
      for (const std::string& s : v.array_strings) out.put_string(s);
      break;
    case GgufType::FLOAT32:
      for (double x : v.array_floats) out.put(static_cast<float>(x));
      break;
    case GgufType::FLOAT64:
      for (double x : v.array_floats) out.put(x);
      break;
    case GgufType::ARRAY:
      for (const GgufValue& element : v.array_values) {
        if (element.type != GgufType::ARRAY) {
          fail("metadata key '{}': an array of arrays holds a {} element", key,
               element.type_description());
        }
        put_array_body(out, key, element);
      }
      break;
    default:
      for (int64_t x : v.array_ints) put_int_element(out, key, et, x);
      break;
  }
}

void put_value(ByteSink& out, std::string_view key, const GgufValue& v) {
  if (!gguf_type_is_known(static_cast<uint32_t>(v.type))) {
    fail("metadata key '{}': unknown value type {}", key, static_cast<uint32_t>(v.type));
  }
  out.put(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::UINT8: out.put(checked_uint<uint8_t>(key, v.type, v.uint_value)); break;
    case GgufType::UINT16: out.put(checked_uint<uint16_t>(key, v.type, v.uint_value)); break;
    case GgufType::UINT32: out.put(checked_uint<uint32_t>(key, v.type, v.uint_value)); break;
    case GgufType::UINT64: out.put(v.uint_value); break;
    case GgufType::INT8: out.put(checked_int<int8_t>(key, v.type, v.int_value)); break;
    case GgufType::INT16: out.put(checked_int<int16_t>(key, v.type, v.int_value)); break;
    case GgufType::INT32: out.put(checked_int<int32_t>(key, v.type, v.int_value)); break;
    case GgufType::INT64: out.put(v.int_value); break;
    case GgufType::FLOAT32: out.put(static_cast<float>(v.float_value)); break;
    case GgufType::FLOAT64: out.put(v.float_value); break;
    case GgufType::BOOL: out.put<uint8_t>(v.uint_value != 0 ? 1 : 0); break;
    case GgufType::STRING: out.put_string(v.string_value); break;
    case GgufType::ARRAY: put_array_body(out, key, v); break;
  }
}

uint64_t alignment_of(const GgufValue& v) {
  if (v.type != GgufType::UINT32) {
    fail("general.alignment must be a UINT32, got {}", v.type_description());
  }
  if (v.uint_value == 0 || v.uint_value > std::numeric_limits<uint32_t>::max() ||
      !std::has_single_bit(v.uint_value)) {
    fail("general.alignment is {}; it must be a nonzero power of two", v.uint_value);
  }
  return v.uint_value;
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

// n zero bytes of padding.
void write_zeros(const WriteBytes& put, uint64_t n) {
  static const char kZeros[256] = {};
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof(kZeros)));
    put(kZeros, chunk);
    n -= chunk;
  }
}

}  // namespace

void GgufWriter::put(const std::string& key, GgufValue v) {
  if (key.empty()) fail("GGUF metadata keys must not be empty");
  if (key.size() > kMaxNameLength) {
    fail("GGUF metadata key of {} bytes is over the {} byte limit", key.size(), kMaxNameLength);
  }
  if (key == "general.alignment") alignment_of(v);  // reject a bad alignment early
  for (GgufKeyValue& kv : metadata_) {
    if (kv.key == key) {  // replace in place, keeping the original order
      kv.value = std::move(v);
      return;
    }
  }
  metadata_.push_back(GgufKeyValue{key, std::move(v)});
}

void GgufWriter::set_uint32(const std::string& key, uint32_t v) {
  GgufValue value;
  value.type = GgufType::UINT32;
  value.uint_value = v;
  put(key, std::move(value));
}

void GgufWriter::set_int32(const std::string& key, int32_t v) {
  GgufValue value;
  value.type = GgufType::INT32;
  value.int_value = v;
  put(key, std::move(value));
}

void GgufWriter::set_uint64(const std::string& key, uint64_t v) {
  GgufValue value;
  value.type = GgufType::UINT64;
  value.uint_value = v;
  put(key, std::move(value));
}

void GgufWriter::set_float32(const std::string& key, float v) {
  GgufValue value;
  value.type = GgufType::FLOAT32;
  value.float_value = v;
  put(key, std::move(value));
}

void GgufWriter::set_bool(const std::string& key, bool v) {
  GgufValue value;
  value.type = GgufType::BOOL;
  value.uint_value = v ? 1 : 0;
  put(key, std::move(value));
}

void GgufWriter::set_string(const std::string& key, const std::string& v) {
  GgufValue value;
  value.type = GgufType::STRING;
  value.string_value = v;
  put(key, std::move(value));
}

void GgufWriter::set_strings(const std::string& key, const std::vector<std::string>& v) {
  GgufValue value;
  value.type = GgufType::ARRAY;
  value.array_type = GgufType::STRING;
  value.array_strings = v;
  put(key, std::move(value));
}

void GgufWriter::set_int32s(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue value;
  value.type = GgufType::ARRAY;
  value.array_type = GgufType::INT32;
  value.array_ints.assign(v.begin(), v.end());
  put(key, std::move(value));
}

void GgufWriter::set_float32s(const std::string& key, const std::vector<float>& v) {
  GgufValue value;
  value.type = GgufType::ARRAY;
  value.array_type = GgufType::FLOAT32;
  value.array_floats.assign(v.begin(), v.end());
  put(key, std::move(value));
}

void GgufWriter::set_value(const std::string& key, const GgufValue& v) { put(key, v); }

bool GgufWriter::has(const std::string& key) const {
  return std::any_of(metadata_.begin(), metadata_.end(),
                     [&](const GgufKeyValue& kv) { return kv.key == key; });
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> dims, DType type,
                            std::vector<uint8_t> data) {
  if (name.empty()) fail("GGUF tensor names must not be empty");
  if (name.size() > kMaxNameLength) {
    fail("GGUF tensor name of {} bytes is over the {} byte limit", name.size(), kMaxNameLength);
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail("tensor '{}' was already added", name);
  }
  if (dims.empty() || dims.size() > kMaxDims) {
    fail("tensor '{}' has {} dimensions (expected 1 to {})", name, dims.size(), kMaxDims);
  }
  int64_t rows = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] <= 0) {
      fail("tensor '{}' dimension {} is {}; every dimension must be positive", name, i, dims[i]);
    }
    if (i > 0 && __builtin_mul_overflow(rows, dims[i], &rows)) {
      fail("tensor '{}' shape [{}] has too many elements", name, fmt::join(dims, ", "));
    }
  }
  const size_t row = row_bytes(type, dims[0]);
  size_t expected = 0;
  if (__builtin_mul_overflow(row, static_cast<uint64_t>(rows), &expected)) {
    fail("tensor '{}' shape [{}] is too large", name, fmt::join(dims, ", "));
  }
  if (data.size() != expected) {
    fail("tensor '{}' of shape [{}] and type {} needs {} bytes of data, got {}", name,
         fmt::join(dims, ", "), dtype_name(type), expected, data.size());
  }
  tensors_.push_back(Tensor{name, std::move(dims), type, std::move(data)});
}

void GgufWriter::write(const std::string& path) const {
  uint64_t alignment = kDefaultAlignment;
  for (const GgufKeyValue& kv : metadata_) {
    if (kv.key == "general.alignment") alignment = alignment_of(kv.value);
  }

  ByteSink header;
  header.put<uint32_t>(0x46554747);  // "GGUF" read as a little-endian u32
  header.put<uint32_t>(kGgufVersion);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata_.size());
  for (const GgufKeyValue& kv : metadata_) {
    header.put_string(kv.key);
    try {
      put_value(header, kv.key, kv.value);
    } catch (const Error& e) {
      fail("{}: {}", path, e.what());
    }
  }
  std::vector<uint64_t> offsets;
  uint64_t data_size = 0;
  for (const Tensor& t : tensors_) {
    const uint64_t offset = align_up(data_size, alignment);
    offsets.push_back(offset);
    data_size = offset + t.data.size();
    header.put_string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) header.put<uint64_t>(static_cast<uint64_t>(d));
    header.put<uint32_t>(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(offset);
  }

  write_file_atomically(path, [&](const WriteBytes& put) {
    const std::string& h = header.bytes();
    put(h.data(), h.size());
    write_zeros(put, align_up(h.size(), alignment) - h.size());
    uint64_t written = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      write_zeros(put, offsets[i] - written);
      put(tensors_[i].data.data(), tensors_[i].data.size());
      written = offsets[i] + tensors_[i].data.size();
    }
    // Pad the last tensor too, as GGML's own writer does.
    write_zeros(put, align_up(written, alignment) - written);
  });
}

}  // namespace px
