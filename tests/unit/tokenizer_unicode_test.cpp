#include <gtest/gtest.h>

#include "tokenizer/unicode.h"

namespace px::unicode {
namespace {

uint32_t only_code_point(const std::string& text) {
  size_t pos = 0;
  uint32_t cp = 0;
  EXPECT_TRUE(decode_one(text, pos, cp));
  EXPECT_EQ(pos, text.size());
  return cp;
}

TEST(TokenizerUnicode, ByteLevelSymbolsFollowGpt2Table) {
  // Printable Latin-1 stands for itself; space, newline and tab move to U+0100 onwards.
  EXPECT_EQ(byte_to_symbol('A'), "A");
  EXPECT_EQ(byte_to_symbol('~'), "~");
  EXPECT_EQ(byte_to_symbol(0xE9), "\xc3\xa9");   // é
  EXPECT_EQ(byte_to_symbol(' '), "\xc4\xa0");    // Ġ U+0120
  EXPECT_EQ(byte_to_symbol('\n'), "\xc4\x8a");   // Ċ U+010A
  EXPECT_EQ(byte_to_symbol('\t'), "\xc4\x89");   // ĉ U+0109
  EXPECT_EQ(byte_to_symbol(0x00), "\xc4\x80");   // Ā U+0100
  EXPECT_EQ(byte_to_symbol(0xAD), "\xc5\x83");   // Ń U+0143, the last shifted byte
}

TEST(TokenizerUnicode, ByteLevelMappingRoundTripsEveryByte) {
  for (int b = 0; b < 256; ++b) {
    const std::string& symbol = byte_to_symbol(static_cast<uint8_t>(b));
    EXPECT_EQ(symbol_to_byte(only_code_point(symbol)), b) << "byte " << b;
  }
  EXPECT_EQ(symbol_to_byte(0x20), -1);   // a plain space is not a symbol
  EXPECT_EQ(symbol_to_byte(0x4E00), -1);
}

TEST(TokenizerUnicode, StrictDecodeRejectsOverlongSurrogatesAndTruncation) {
  const std::string bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                             "\xe2\x82", "\x80", "\xff"};
  for (const std::string& text : bad) {
    size_t pos = 0;
    uint32_t cp = 0;
    EXPECT_FALSE(decode_one(text, pos, cp)) << testing::PrintToString(text);
    EXPECT_EQ(pos, 0u);
  }
  EXPECT_EQ(only_code_point("\xe2\x82\xac"), 0x20ACu);      // €
  EXPECT_EQ(only_code_point("\xf0\x9f\xa6\x99"), 0x1F999u);  // 🦙
}

TEST(TokenizerUnicode, SanitizeReplacesEachInvalidByte) {
  EXPECT_EQ(sanitize("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(sanitize("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(sanitize("ok \xf0\x9f\xa6\x99"), "ok \xf0\x9f\xa6\x99");
}

TEST(TokenizerUnicode, CompletePrefixHoldsOnlyCharactersThatCanStillFinish) {
  EXPECT_EQ(complete_prefix_length("abc"), 3u);
  EXPECT_EQ(complete_prefix_length("a\xf0\x9f"), 1u);         // emoji started
  EXPECT_EQ(complete_prefix_length("a\xf0\x9f\xa6"), 1u);
  EXPECT_EQ(complete_prefix_length("a\xf0\x9f\xa6\x99"), 5u);
  EXPECT_EQ(complete_prefix_length("a\xe2"), 1u);
  EXPECT_EQ(complete_prefix_length("a\x80"), 2u);             // stray continuation: never valid
  EXPECT_EQ(complete_prefix_length("a\xe0\x80"), 3u);         // E0 80 is overlong: never valid
  EXPECT_EQ(complete_prefix_length("\xff"), 1u);
  EXPECT_EQ(complete_prefix_length(""), 0u);
}

}  // namespace
}  // namespace px::unicode
