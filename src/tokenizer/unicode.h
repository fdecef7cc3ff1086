#pragma once
// UTF-8 helpers and GPT-2's byte-level mapping, shared by the tokenizers and the detokenizer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace px::unicode {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Length of the UTF-8 sequence that starts with `lead`, judged by its high bits alone
// (1 for ASCII and for stray continuation bytes, so a scan always advances).
size_t sequence_length(uint8_t lead);

// Bytes of the character that starts at text[pos] (pos < text.size()): sequence_length of its
// lead byte, cut short at the end of `text`.
inline size_t char_length_at(std::string_view text, size_t pos) {
  const size_t length = sequence_length(static_cast<uint8_t>(text[pos]));
  return length < text.size() - pos ? length : text.size() - pos;
}

// Appends the UTF-8 encoding of `cp` (values past U+10FFFF become U+FFFD).
void append_utf8(std::string& out, uint32_t cp);
std::string to_utf8(uint32_t cp);

// Strict decode of one character at `pos`: on success stores it in `cp`, advances `pos` and
// returns true. Overlong forms, surrogates, values past U+10FFFF and truncated or broken
// sequences return false and leave `pos` unchanged.
bool decode_one(std::string_view text, size_t& pos, uint32_t& cp);

// Every invalid byte becomes U+FFFD; valid characters are copied unchanged.
std::string sanitize(std::string_view text);

// Length of the longest prefix of `bytes` that can be emitted now: everything except a
// trailing, so far valid, start of a character that more bytes could still complete.
size_t complete_prefix_length(std::string_view bytes);

// GPT-2 byte-level BPE: each byte is shown as a printable code point (printable Latin-1 bytes
// stand for themselves, the others are moved to U+0100 onwards).
const std::string& byte_to_symbol(uint8_t byte);
// The byte a code point stands for, or -1 when it is not one of the 256 symbols.
int symbol_to_byte(uint32_t cp);
// Maps every byte of `bytes` to its symbol.
std::string bytes_to_symbols(std::string_view bytes);

}  // namespace px::unicode
