// StreamingDetokenizer: whole UTF-8 characters only, and the same text as decode().
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"
#include "tokenizer_test_vocabs.h"

namespace px {
namespace {

using test_vocabs::kSpace;
const std::string kReplacement = "\xef\xbf\xbd";

// make_spm_vocab: <unk>, <s>, </s>, 256 byte tokens (id 3 + byte), then a few pieces.
std::shared_ptr<Tokenizer> spm_tokenizer() {
  return Tokenizer::from_vocab(
      test_vocabs::make_spm_vocab({{"h", -1}, {"i", -1}, {"hi", -1}, {kSpace + "hi", -1}}));
}

int32_t byte_token(uint8_t b) { return 3 + b; }

TEST(StreamingDetokenizer, HoldsAMultiByteCharacterSplitAcrossByteTokens) {
  auto tok = spm_tokenizer();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.push(byte_token(0xC3)), "");
  EXPECT_EQ(stream.push(byte_token(0xA9)), "\xc3\xa9");  // é
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamingDetokenizer, HoldsAnEmojiUntilItsFourthByte) {
  auto tok = spm_tokenizer();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.push(tok->find_token(kSpace + "hi")), "hi");
  EXPECT_EQ(stream.push(byte_token(0xF0)), "");
  EXPECT_EQ(stream.push(byte_token(0x9F)), "");
  EXPECT_EQ(stream.push(byte_token(0xA6)), "");
  EXPECT_EQ(stream.push(byte_token(0x99)), "\xf0\x9f\xa6\x99");  // 🦙
  EXPECT_EQ(stream.push(tok->find_token(kSpace + "hi")), " hi");
}

TEST(StreamingDetokenizer, SkipsSpecialTokensAndStripsThePrefixSpaceOnce) {
  auto tok = spm_tokenizer();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.push(1), "");  // <s>
  EXPECT_EQ(stream.push(tok->find_token(kSpace + "hi")), "hi");
  EXPECT_EQ(stream.push(tok->find_token(kSpace + "hi")), " hi");
  EXPECT_EQ(stream.push(2), "");

  StreamingDetokenizer verbatim(*tok, /*skip_special=*/false);
  EXPECT_EQ(verbatim.push(1), "<s>");
  EXPECT_EQ(verbatim.push(tok->find_token(kSpace + "hi")), " hi");
}

TEST(StreamingDetokenizer, ReplacesBytesThatCanNeverFormACharacter) {
  auto tok = spm_tokenizer();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.push(byte_token(0xFF)), kReplacement);
  EXPECT_EQ(stream.push(byte_token(0xE2)), "");
  // A character that starts but is interrupted by plain text is given up.
  EXPECT_EQ(stream.push(tok->find_token("hi")), kReplacement + "hi");
  EXPECT_EQ(stream.push(byte_token(0xE2)), "");
  EXPECT_EQ(stream.push(byte_token(0x82)), "");
  EXPECT_EQ(stream.flush(), kReplacement + kReplacement);
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamingDetokenizer, ByteLevelBpeEmojiArrivesWhole) {
  auto tok = Tokenizer::from_vocab(test_vocabs::make_bpe_vocab({}));
  StreamingDetokenizer stream(*tok);
  std::string streamed;
  for (int32_t id : tok->encode("\xf0\x9f\x9a\x80 ok", false, false)) {  // 🚀 ok
    const std::string piece = stream.push(id);
    EXPECT_TRUE(piece.empty() || unicode::sanitize(piece) == piece);
    streamed += piece;
  }
  EXPECT_EQ(streamed, "\xf0\x9f\x9a\x80 ok");
}

TEST(StreamingDetokenizer, StreamedTextEqualsDecodeForRandomTokenSequences) {
  auto tok = spm_tokenizer();
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_id(0, tok->n_vocab() - 1);
  // Mostly bytes from UTF-8 lead/continuation ranges, so characters often split and break.
  std::uniform_int_distribution<int> utf8ish(0x80, 0xF4);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    const int length = 1 + round % 12;
    for (int i = 0; i < length; ++i) {
      ids.push_back(rng() % 3 == 0 ? any_id(rng) : byte_token(static_cast<uint8_t>(utf8ish(rng))));
    }
    for (bool skip : {true, false}) {
      StreamingDetokenizer stream(*tok, skip);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.push(id);
      streamed += stream.flush();
      EXPECT_EQ(streamed, tok->decode(ids, skip)) << testing::PrintToString(ids);
      EXPECT_EQ(unicode::sanitize(streamed), streamed);
    }
  }
}

}  // namespace
}  // namespace px
