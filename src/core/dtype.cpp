#include "core/dtype.h"

#include <array>
#include <cctype>
#include <string>

#include "core/error.h"

namespace px {
namespace {

struct Entry {
  uint32_t id;
  DTypeInfo info;
};

// Block sizes and byte sizes follow ggml's type traits; they define the on-disk layout.
constexpr std::array kTypes = {
    Entry{0, {"F32", 1, 4, true}},        Entry{1, {"F16", 1, 2, true}},
    Entry{2, {"Q4_0", 32, 18, true}},     Entry{3, {"Q4_1", 32, 20, false}},
    Entry{6, {"Q5_0", 32, 22, false}},    Entry{7, {"Q5_1", 32, 24, false}},
    Entry{8, {"Q8_0", 32, 34, true}},     Entry{9, {"Q8_1", 32, 36, false}},
    Entry{10, {"Q2_K", 256, 84, false}},  Entry{11, {"Q3_K", 256, 110, false}},
    Entry{12, {"Q4_K", 256, 144, true}},  Entry{13, {"Q5_K", 256, 176, false}},
    Entry{14, {"Q6_K", 256, 210, true}},  Entry{15, {"Q8_K", 256, 292, false}},
    Entry{16, {"IQ2_XXS", 256, 66, false}}, Entry{17, {"IQ2_XS", 256, 74, false}},
    Entry{18, {"IQ3_XXS", 256, 98, false}}, Entry{19, {"IQ1_S", 256, 50, false}},
    Entry{20, {"IQ4_NL", 32, 18, false}}, Entry{21, {"IQ3_S", 256, 110, false}},
    Entry{22, {"IQ2_S", 256, 82, false}}, Entry{23, {"IQ4_XS", 256, 136, false}},
    Entry{24, {"I8", 1, 1, false}},       Entry{25, {"I16", 1, 2, false}},
    Entry{26, {"I32", 1, 4, false}},      Entry{27, {"I64", 1, 8, false}},
    Entry{28, {"F64", 1, 8, false}},      Entry{29, {"IQ1_M", 256, 56, false}},
    Entry{30, {"BF16", 1, 2, true}},      Entry{34, {"TQ1_0", 256, 54, false}},
    Entry{35, {"TQ2_0", 256, 66, false}},
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t ggml_type) {
  for (const auto& e : kTypes) {
    if (e.id == ggml_type) return &e.info;
  }
  return nullptr;
}

const DTypeInfo& dtype_info(DType type) {
  const DTypeInfo* info = dtype_info(static_cast<uint32_t>(type));
  if (!info) fail("unknown tensor type id {}", static_cast<uint32_t>(type));
  return *info;
}

std::string_view dtype_name(DType type) { return dtype_info(type).name; }

DType parse_dtype(std::string_view name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string accepted;
  for (const auto& e : kTypes) {
    if (!e.info.computable) continue;
    if (e.info.name == upper) return static_cast<DType>(e.id);
    accepted += (accepted.empty() ? "" : ", ") + std::string(e.info.name);
  }
  fail("unknown tensor type '{}' (accepted: {})", name, accepted);
}

size_t row_bytes(DType type, int64_t n) {
  const DTypeInfo& info = dtype_info(type);
  if (n < 0 || n % info.block_size != 0) {
    fail("row of {} elements is not a multiple of the {} block size {}", n, info.name,
         info.block_size);
  }
  return static_cast<size_t>(n / info.block_size) * info.block_bytes;
}

}  // namespace px
