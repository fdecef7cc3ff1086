#include "tokenizer/unicode.h"

#include <array>

namespace px::unicode {

namespace {

bool is_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// Bytes a well-formed sequence with this lead needs, or 0 when `lead` can not start one.
size_t expected_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// The allowed range of the second byte depends on the lead (this rules out overlong forms,
// surrogates and code points past U+10FFFF); later bytes are plain continuations.
bool second_byte_ok(uint8_t lead, uint8_t second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return is_continuation(second);
  }
}

// True when `bytes` (shorter than its lead asks for) could still become a valid character.
bool is_valid_prefix(std::string_view bytes) {
  const auto lead = static_cast<uint8_t>(bytes[0]);
  const size_t need = expected_length(lead);
  if (need < 2 || bytes.size() >= need) return false;
  if (bytes.size() >= 2 && !second_byte_ok(lead, static_cast<uint8_t>(bytes[1]))) return false;
  if (bytes.size() >= 3 && !is_continuation(static_cast<uint8_t>(bytes[2]))) return false;
  return true;
}

struct ByteLevelTables {
  std::array<std::string, 256> byte_to_symbol;
  std::array<int16_t, 324> symbol_to_byte;  // code points 0..323 cover all 256 symbols

  ByteLevelTables() {
    symbol_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next_shifted = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : next_shifted++;
      byte_to_symbol[b] = to_utf8(cp);
      symbol_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

size_t sequence_length(uint8_t lead) {
  static constexpr size_t kByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByHighNibble[lead >> 4];
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF) cp = kReplacementChar;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string to_utf8(uint32_t cp) {
  std::string out;
  append_utf8(out, cp);
  return out;
}

bool decode_one(std::string_view text, size_t& pos, uint32_t& cp) {
  if (pos >= text.size()) return false;
  const auto lead = static_cast<uint8_t>(text[pos]);
  const size_t need = expected_length(lead);
  if (need == 0 || pos + need > text.size()) return false;
  if (need == 1) {
    cp = lead;
    pos += 1;
    return true;
  }
  if (!second_byte_ok(lead, static_cast<uint8_t>(text[pos + 1]))) return false;
  for (size_t i = 2; i < need; ++i) {
    if (!is_continuation(static_cast<uint8_t>(text[pos + i]))) return false;
  }
  static constexpr uint8_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t value = lead & kLeadMask[need];
  for (size_t i = 1; i < need; ++i) value = (value << 6) | (static_cast<uint8_t>(text[pos + i]) & 0x3F);
  cp = value;
  pos += need;
  return true;
}

std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    uint32_t cp = 0;
    if (decode_one(text, pos, cp)) {
      out.append(text.substr(start, pos - start));
    } else {
      append_utf8(out, kReplacementChar);
      pos += 1;
    }
  }
  return out;
}

size_t complete_prefix_length(std::string_view bytes) {
  // A character is at most 4 bytes, so only the last 3 can be an unfinished one.
  const size_t lowest = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t start = bytes.size(); start-- > lowest;) {
    if (!is_continuation(static_cast<uint8_t>(bytes[start]))) {
      return is_valid_prefix(bytes.substr(start)) ? start : bytes.size();
    }
  }
  return bytes.size();
}

const std::string& byte_to_symbol(uint8_t byte) { return byte_level_tables().byte_to_symbol[byte]; }

int symbol_to_byte(uint32_t cp) {
  const auto& table = byte_level_tables().symbol_to_byte;
  return cp < table.size() ? table[cp] : -1;
}

std::string bytes_to_symbols(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_symbol(static_cast<uint8_t>(c));
  return out;
}

}  // namespace px::unicode
