// GGUF reader. Every byte read is bounds-checked against the buffer and every count is
// checked against the bytes left before anything is allocated for it, so a hostile or
// damaged file ends in a px::Error, never in a crash or a huge allocation.
#include "model/gguf.h"


#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/mapped_file.h"

namespace px {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields directly");

constexpr uint32_t kMaxArrayDepth = 8;         // nested ARRAY levels in one value
constexpr uint64_t kMaxNameLength = 64 * 1024;  // metadata keys and tensor names
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kDefaultAlignment = 32;
// Smallest possible encodings, used to reject counts the remaining bytes cannot hold:
// a KV is key length + 1 key byte + value type + 1 value byte; a tensor info is name
// length + 1 name byte + n_dims + 1 dim + type + offset.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;


// Names and keys come from the file; keep error messages readable whatever they hold.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 96;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMaxShown) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

uint64_t min_encoded_size(GgufType type) {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL: return 1;
    case GgufType::UINT16:
    case GgufType::INT16: return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32: return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;   // the length alone
    case GgufType::ARRAY: return 12;   // element type + count
  }
  return 1;
}

// Sequential, bounds-checked reads from the file's bytes. `context` says which part of
// the file is being read (a key, a tensor) and is set once per entry, not per field.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& file() const { return file_; }
  const std::string& context() const { return context_; }
  void set_context(std::string context) { context_ = std::move(context); }

  const uint8_t* take(uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail("{}: file is truncated: {} of {} at offset {} needs {} bytes, but only {} remain",
           file_, what, context_, pos_, n, remaining());
    }
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  template <typename T>
  T read(std::string_view what) {
    T value;
    std::memcpy(&value, take(sizeof(T), what), sizeof(T));
    return value;
  }

  // A string's length must fit in what is left before any memory is allocated for it.
  std::string read_string(std::string_view what, uint64_t max_length) {
    const auto length = read<uint64_t>(what);
    if (length > remaining()) {
      fail("{}: {} of {} has length {}, but only {} bytes remain in the file", file_, what,
           context_, length, remaining());
    }
    if (length > max_length) {
      fail("{}: {} of {} has length {}, over the limit of {} bytes", file_, what, context_,
           length, max_length);
    }
    const auto* p = reinterpret_cast<const char*>(take(length, what));
    return std::string(p, length);
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& file_;
  std::string context_;
  uint64_t pos_ = 0;
};

GgufType read_value_type(Cursor& c, std::string_view what) {
  const auto raw = c.read<uint32_t>(what);
  if (!gguf_type_is_known(raw)) {
    fail("{}: {} has unknown {} {} (known types are 0 to 12)", c.file(), c.context(), what, raw);
  }
  return static_cast<GgufType>(raw);
}

// Fixed-size integer elements; the caller has checked that count * sizeof(T) bytes remain.
template <typename T>
void read_int_elements(Cursor& c, GgufValue& v, uint64_t count) {
  const uint8_t* p = c.take(count * sizeof(T), "array elements");
  v.array_ints.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    T x;
    std::memcpy(&x, p + i * sizeof(T), sizeof(T));
    if constexpr (std::is_same_v<T, uint64_t>) {
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("{}: {} holds UINT64 array element {} = {}, above the supported maximum {}",
             c.file(), c.context(), i, x, std::numeric_limits<int64_t>::max());
      }
    }
    v.array_ints[i] = static_cast<int64_t>(x);
  }
}

template <typename T>
void read_float_elements(Cursor& c, GgufValue& v, uint64_t count) {
  const uint8_t* p = c.take(count * sizeof(T), "array elements");
  v.array_floats.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    T x;
    std::memcpy(&x, p + i * sizeof(T), sizeof(T));
    v.array_floats[i] = static_cast<double>(x);
  }
}

GgufValue read_value(Cursor& c, GgufType type, uint32_t depth);

void read_array(Cursor& c, GgufValue& v, uint32_t depth) {
  v.array_type = read_value_type(c, "array element type");
  if (v.array_type == GgufType::ARRAY && depth + 1 >= kMaxArrayDepth) {
    fail("{}: {} nests arrays more than {} levels deep", c.file(), c.context(), kMaxArrayDepth);
  }
  const auto count = c.read<uint64_t>("array length");
  const uint64_t min_size = min_encoded_size(v.array_type);
  if (count > c.remaining() / min_size) {
    fail("{}: {} claims an array of {} {} elements, which cannot fit in the {} bytes left in "
         "the file",
         c.file(), c.context(), count, gguf_type_name(v.array_type), c.remaining());
  }
  switch (v.array_type) {
    case GgufType::UINT8: read_int_elements<uint8_t>(c, v, count); break;
    case GgufType::INT8: read_int_elements<int8_t>(c, v, count); break;
    case GgufType::BOOL:
      read_int_elements<uint8_t>(c, v, count);
      for (int64_t& b : v.array_ints) b = b != 0 ? 1 : 0;  // as for scalar BOOLs
      break;
    case GgufType::UINT16: read_int_elements<uint16_t>(c, v, count); break;
    case GgufType::INT16: read_int_elements<int16_t>(c, v, count); break;
    case GgufType::UINT32: read_int_elements<uint32_t>(c, v, count); break;
    case GgufType::INT32: read_int_elements<int32_t>(c, v, count); break;
    case GgufType::UINT64: read_int_elements<uint64_t>(c, v, count); break;
    case GgufType::INT64: read_int_elements<int64_t>(c, v, count); break;
    case GgufType::FLOAT32: read_float_elements<float>(c, v, count); break;
    case GgufType::FLOAT64: read_float_elements<double>(c, v, count); break;
    case GgufType::STRING:
      v.array_strings.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        v.array_strings.push_back(
            c.read_string("string array element", std::numeric_limits<uint64_t>::max()));
      }
      break;
    case GgufType::ARRAY:
      // A GgufValue is much larger than its 12-byte minimum encoding: grow as elements
      // actually parse instead of trusting the count for a big reservation.
      v.array_values.reserve(std::min<uint64_t>(count, 1024));
      for (uint64_t i = 0; i < count; ++i) {
        v.array_values.push_back(read_value(c, GgufType::ARRAY, depth + 1));
      }
      break;
  }
}

GgufValue read_value(Cursor& c, GgufType type, uint32_t depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UINT8: v.uint_value = c.read<uint8_t>("UINT8 value"); break;
    case GgufType::INT8: v.int_value = c.read<int8_t>("INT8 value"); break;
    case GgufType::UINT16: v.uint_value = c.read<uint16_t>("UINT16 value"); break;
    case GgufType::INT16: v.int_value = c.read<int16_t>("INT16 value"); break;
    case GgufType::UINT32: v.uint_value = c.read<uint32_t>("UINT32 value"); break;
    case GgufType::INT32: v.int_value = c.read<int32_t>("INT32 value"); break;
    case GgufType::UINT64: v.uint_value = c.read<uint64_t>("UINT64 value"); break;
    case GgufType::INT64: v.int_value = c.read<int64_t>("INT64 value"); break;
    case GgufType::FLOAT32: v.float_value = c.read<float>("FLOAT32 value"); break;
    case GgufType::FLOAT64: v.float_value = c.read<double>("FLOAT64 value"); break;
    case GgufType::BOOL: v.uint_value = c.read<uint8_t>("BOOL value") != 0 ? 1 : 0; break;
    case GgufType::STRING:
      v.string_value = c.read_string("string value", std::numeric_limits<uint64_t>::max());
      break;
    case GgufType::ARRAY: read_array(c, v, depth); break;
  }
  return v;
}

void check_alignment(const std::string& file, const GgufValue& v) {
  if (v.type != GgufType::UINT32) {
    fail("{}: general.alignment must be a UINT32, found {}", file, v.type_description());
  }
  if (v.uint_value == 0 || !std::has_single_bit(v.uint_value)) {
    fail("{}: general.alignment is {}; it must be a nonzero power of two", file, v.uint_value);
  }
}

std::string format_dims(const std::vector<int64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// Reads one tensor info after its name; checks shape, type and offset alignment.
GgufTensorInfo read_tensor_info(Cursor& c, std::string name, uint64_t alignment) {
  const std::string& file = c.file();
  GgufTensorInfo info;
  info.name = std::move(name);
  const std::string shown = printable(info.name);
  const auto n_dims = c.read<uint32_t>("dimension count");
  if (n_dims == 0 || n_dims > kMaxDims) {
    fail("{}: tensor '{}' has {} dimensions (expected 1 to {})", file, shown, n_dims, kMaxDims);
  }
  info.dims.resize(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    const auto raw = c.read<uint64_t>("dimension");
    // The file stores u64, GGML uses int64: above INT64_MAX means a negative size.
    const auto dim = static_cast<int64_t>(raw);
    if (dim <= 0) {
      fail("{}: tensor '{}' dimension {} is {}; every dimension must be positive", file, shown,
           d, dim);
    }
    info.dims[d] = dim;
  }
  int64_t n_elements = 1;
  for (int64_t dim : info.dims) {
    if (__builtin_mul_overflow(n_elements, dim, &n_elements)) {
      fail("{}: tensor '{}' has dimensions {} whose product overflows a 64-bit integer", file,
           shown, format_dims(info.dims));
    }
  }
  info.n_elements = n_elements;

  const auto type_id = c.read<uint32_t>("tensor type");
  const DTypeInfo* type = dtype_info(type_id);
  if (!type) fail("{}: tensor '{}' has unknown type id {}", file, shown, type_id);
  info.type = static_cast<DType>(type_id);
  if (info.dims[0] % type->block_size != 0) {
    fail("{}: tensor '{}' row length {} is not a multiple of the {} block size {}", file, shown,
         info.dims[0], type->name, type->block_size);
  }
  uint64_t row_bytes = 0;
  uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(info.dims[0] / type->block_size),
                             static_cast<uint64_t>(type->block_bytes), &row_bytes) ||
      __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(info.rows()), &n_bytes)) {
    fail("{}: tensor '{}' of shape {} and type {} has a byte size that overflows 64 bits", file,
         shown, format_dims(info.dims), type->name);
  }
  info.n_bytes = n_bytes;

  info.offset = c.read<uint64_t>("tensor data offset");
  if (info.offset % alignment != 0) {
    fail("{}: tensor '{}' data offset {} is not a multiple of the alignment {}", file, shown,
         info.offset, alignment);
  }
  return info;
}

}  // namespace

int64_t GgufTensorInfo::rows() const {
  int64_t rows = 1;
  for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
  return rows;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<MappedFile> mapping = MappedFile::open(path, "GGUF file");
  const std::span<const uint8_t> bytes = mapping->bytes();
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->name_ = path;
  file->mapping_ = std::move(mapping);
  file->bytes_ = bytes;
  file->parse_all();  // on a throw, the destructor unmaps
  return file;
}

std::shared_ptr<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  file->parse_all();
  return file;
}

GgufFile::~GgufFile() = default;

void GgufFile::parse_all() {
  Cursor c(bytes_, name_);
  c.set_context("the header");
  const uint8_t* magic = c.take(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    fail("{}: not a GGUF file (starts with bytes {:02x} {:02x} {:02x} {:02x}, expected the magic "
         "'GGUF')",
         name_, magic[0], magic[1], magic[2], magic[3]);
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) {
    fail("{}: GGUF version 1 is not supported (only versions 2 and 3); re-convert the model "
         "with a current llama.cpp",
         name_);
  }
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped >= 1 && swapped <= 3) {
      fail("{}: big-endian GGUF files are not supported (version field reads {})", name_,
           version_);
    }
    fail("{}: unsupported GGUF version {} (expected 2 or 3)", name_, version_);
  }
  const auto tensor_count = c.read<uint64_t>("tensor count");
  const auto kv_count = c.read<uint64_t>("metadata count");
  const uint64_t rest = c.remaining();
  if (kv_count > rest / kMinKvBytes || tensor_count > rest / kMinTensorInfoBytes ||
      kv_count * kMinKvBytes + tensor_count * kMinTensorInfoBytes > rest) {
    fail("{}: header claims {} metadata entries and {} tensors, more than the remaining {} "
         "bytes can encode",
         name_, kv_count, tensor_count, rest);
  }

  // Counts are bounded by the file size, but entries are far larger in memory than on
  // disk: cap the up-front reservation.
  constexpr uint64_t kMaxReserve = 4096;
  metadata_.reserve(std::min(kv_count, kMaxReserve));
  for (uint64_t i = 0; i < kv_count; ++i) {
    c.set_context(fmt::format("metadata entry #{}", i));
    std::string key = c.read_string("key", kMaxNameLength);
    if (key.empty()) fail("{}: metadata entry #{} has an empty key", name_, i);
    if (metadata_index_.contains(key)) {
      fail("{}: duplicate metadata key '{}'", name_, printable(key));
    }
    c.set_context(fmt::format("metadata key '{}'", printable(key)));
    const GgufType type = read_value_type(c, "value type");
    GgufValue value = read_value(c, type, 0);
    if (key == "general.alignment") {
      check_alignment(name_, value);
      alignment_ = value.uint_value;
    }
    metadata_index_.emplace(key, metadata_.size());
    metadata_.push_back(GgufKeyValue{std::move(key), std::move(value)});
  }

  tensors_.reserve(std::min(tensor_count, kMaxReserve));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    c.set_context(fmt::format("tensor info #{}", i));
    std::string name = c.read_string("tensor name", kMaxNameLength);
    if (name.empty()) fail("{}: tensor info #{} has an empty name", name_, i);
    if (tensor_index_.contains(name)) {
      fail("{}: duplicate tensor name '{}'", name_, printable(name));
    }
    c.set_context(fmt::format("tensor '{}'", printable(name)));
    GgufTensorInfo info = read_tensor_info(c, std::move(name), alignment_);
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }

  // pos <= size and alignment <= 2^31, so this cannot overflow.
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;

  const uint64_t size = bytes_.size();
  for (const GgufTensorInfo& t : tensors_) {
    uint64_t start = 0;
    uint64_t end = 0;
    const bool overflow = __builtin_add_overflow(data_offset_, t.offset, &start) ||
                          __builtin_add_overflow(start, t.n_bytes, &end);
    if (overflow || end > size) {
      const std::string where = overflow ? fmt::format("{} + {}", data_offset_, t.offset)
                                         : std::to_string(start);
      fail("{}: tensor '{}' data [offset {}, {} bytes] lies outside the file (size {}); the file "
           "may be truncated",
           name_, printable(t.name), where, t.n_bytes, size);
    }
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GgufTensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (a.offset + a.n_bytes > b.offset) {
      fail("{}: tensors '{}' [data offset {}, {} bytes] and '{}' [data offset {}, {} bytes] "
           "overlap",
           name_, printable(a.name), a.offset, a.n_bytes, printable(b.name), b.offset, b.n_bytes);
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: required metadata key '{}' is missing", name_, key);
  return *v;
}

namespace {

// Runs a GgufValue accessor, adding the file and key to its error.
template <typename Access>
auto typed(const std::string& file, std::string_view key, const GgufValue& v, Access access) {
  try {
    return access(v);
  } catch (const Error& e) {
    fail("{}: metadata key '{}': {}", file, key, e.what());
  }
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  return typed(name_, key, get(key), [](const GgufValue& v) { return v.as_string(); });
}

int64_t GgufFile::get_int(std::string_view key) const {
  return typed(name_, key, get(key), [](const GgufValue& v) { return v.as_int(); });
}

double GgufFile::get_float(std::string_view key) const {
  return typed(name_, key, get(key), [](const GgufValue& v) { return v.as_float(); });
}

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return typed(name_, key, *v, [](const GgufValue& x) { return x.as_string(); });
}

std::optional<int64_t> GgufFile::find_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return typed(name_, key, *v, [](const GgufValue& x) { return x.as_int(); });
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return typed(name_, key, *v, [](const GgufValue& x) { return x.as_float(); });
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return typed(name_, key, *v, [](const GgufValue& x) { return x.as_bool(); });
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return bytes_.data() + data_offset_ + info.offset;
}

}  // namespace px
