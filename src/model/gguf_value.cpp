// GgufValue accessors and type names (kept apart from the parser in gguf.cpp).
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "model/gguf.h"

namespace px {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UINT8: return "UINT8";
    case GgufType::INT8: return "INT8";
    case GgufType::UINT16: return "UINT16";
    case GgufType::INT16: return "INT16";
    case GgufType::UINT32: return "UINT32";
    case GgufType::INT32: return "INT32";
    case GgufType::FLOAT32: return "FLOAT32";
    case GgufType::BOOL: return "BOOL";
    case GgufType::STRING: return "STRING";
    case GgufType::ARRAY: return "ARRAY";
    case GgufType::UINT64: return "UINT64";
    case GgufType::INT64: return "INT64";
    case GgufType::FLOAT64: return "FLOAT64";
  }
  return "unknown";
}

bool gguf_type_is_known(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufType::FLOAT64); }

bool gguf_type_is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 ||
         t == GgufType::UINT64;
}

bool gguf_type_is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 ||
         t == GgufType::INT64;
}

bool gguf_type_is_float(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

std::string GgufValue::type_description() const {
  if (type != GgufType::ARRAY) return std::string(gguf_type_name(type));
  return "ARRAY of " + std::string(gguf_type_name(array_type));
}

size_t GgufValue::array_size() const {
  if (type != GgufType::ARRAY) return 0;
  switch (array_type) {
    case GgufType::STRING: return array_strings.size();
    case GgufType::ARRAY: return array_values.size();
    case GgufType::FLOAT32:
    case GgufType::FLOAT64: return array_floats.size();
    default: return array_ints.size();
  }
}

int64_t GgufValue::as_int() const {
  if (gguf_type_is_signed(type)) return int_value;
  if (gguf_type_is_unsigned(type)) {
    if (uint_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail("value {} ({}) does not fit in a signed 64-bit integer", uint_value,
           gguf_type_name(type));
    }
    return static_cast<int64_t>(uint_value);
  }
  fail("expected an integer, found {}", type_description());
}

uint64_t GgufValue::as_uint() const {
  if (gguf_type_is_unsigned(type)) return uint_value;
  if (gguf_type_is_signed(type)) {
    if (int_value < 0) {
      fail("expected a non-negative integer, found {} ({})", int_value, gguf_type_name(type));
    }
    return static_cast<uint64_t>(int_value);
  }
  fail("expected an unsigned integer, found {}", type_description());
}

double GgufValue::as_float() const {
  if (gguf_type_is_float(type)) return float_value;
  if (gguf_type_is_signed(type)) return static_cast<double>(int_value);
  if (gguf_type_is_unsigned(type)) return static_cast<double>(uint_value);
  fail("expected a number, found {}", type_description());
}

bool GgufValue::as_bool() const {
  if (type != GgufType::BOOL) fail("expected BOOL, found {}", type_description());
  return uint_value != 0;
}

const std::string& GgufValue::as_string() const {
  if (type != GgufType::STRING) fail("expected STRING, found {}", type_description());
  return string_value;
}

}  // namespace px
