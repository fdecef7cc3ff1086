// SentencePiece-style tokenizer on small hand-built vocabularies.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"
#include "tokenizer_test_vocabs.h"

namespace px {
namespace {

using test_vocabs::kSpace;
using test_vocabs::make_spm_vocab;

class SpmTokenizerTest : public testing::Test {
 protected:
  int32_t id(const std::string& text) const {
    const int32_t found = tok->find_token(text);
    EXPECT_GE(found, 0) << "no token " << text;
    return found;
  }
  std::vector<int32_t> encode(std::string_view text, bool add_special = false,
                              bool parse_special = false) const {
    return tok->encode(text, add_special, parse_special);
  }

  std::shared_ptr<Tokenizer> tok = Tokenizer::from_vocab(make_spm_vocab({
      {kSpace, -1}, {"a", -1}, {"b", -1}, {"c", -1}, {"h", -1}, {"i", -1},
      {"ab", -2},          // loses to "bc" below
      {"bc", -0.5f},
      {kSpace + "a", -3},
      {kSpace + "hi", -0.1f},
      {"hi", -0.2f},
      {"aa", -1},
      {"<x>", 0, TokenType::UserDefined},
  }));
};

TEST_F(SpmTokenizerTest, MergesTheHighestScoringPairFirst) {
  // "▁abc": "bc" (-0.5) beats "ab" (-2) and "▁a" (-3); then "▁a" is the only pair left.
  EXPECT_EQ(encode("abc"), (std::vector<int32_t>{id(kSpace + "a"), id("bc")}));
}

TEST_F(SpmTokenizerTest, EqualScoresMergeLeftmostFirst) {
  // "▁aaa": both "aa" pairs score -1 (above "▁a" at -3); the left one merges, leaving
  // "▁" "aa" "a" with no further pair in the vocabulary.
  EXPECT_EQ(encode("aaa"), (std::vector<int32_t>{id(kSpace), id("aa"), id("a")}));
  Vocab plain = make_spm_vocab({{"a", -1}, {"aa", -1}});
  plain.add_space_prefix = false;
  auto no_prefix = Tokenizer::from_vocab(std::move(plain));
  const int32_t aa = no_prefix->find_token("aa");
  const int32_t a = no_prefix->find_token("a");
  EXPECT_EQ(no_prefix->encode("aaa", false, false), (std::vector<int32_t>{aa, a}));
}

TEST_F(SpmTokenizerTest, EscapesSpacesAndAddsOneLeadingSpace) {
  EXPECT_EQ(encode("hi hi"), (std::vector<int32_t>{id(kSpace + "hi"), id(kSpace + "hi")}));
  EXPECT_EQ(encode(" hi"), (std::vector<int32_t>{id(kSpace), id(kSpace + "hi")}));
  EXPECT_TRUE(encode("").empty());
}

TEST_F(SpmTokenizerTest, UnknownCharactersFallBackToByteTokens) {
  // é = C3 A9 is no piece: its two bytes come out as <0xC3> <0xA9>.
  EXPECT_EQ(encode("\xc3\xa9"),
            (std::vector<int32_t>{id(kSpace), id("<0xC3>"), id("<0xA9>")}));
}

TEST_F(SpmTokenizerTest, WithoutByteTokensUnknownCharactersBecomeUnk) {
  auto no_bytes = Tokenizer::from_vocab(make_spm_vocab({{kSpace, -1}, {"a", -1}}, false));
  EXPECT_EQ(no_bytes->encode("a\xc3\xa9" "a", false, false),
            (std::vector<int32_t>{no_bytes->find_token(kSpace), no_bytes->find_token("a"), 0,
                                  no_bytes->find_token("a")}));
}

TEST_F(SpmTokenizerTest, AddSpecialPrependsBosAndOptionallyAppendsEos) {
  EXPECT_EQ(encode("hi", true), (std::vector<int32_t>{1, id(kSpace + "hi")}));
  Vocab with_eos = make_spm_vocab({{"hi", -1}, {kSpace + "hi", -1}});
  with_eos.add_eos = true;
  auto t = Tokenizer::from_vocab(std::move(with_eos));
  EXPECT_EQ(t->encode("hi", true, false), (std::vector<int32_t>{1, t->find_token(kSpace + "hi"), 2}));
  EXPECT_EQ(t->encode("hi", false, false), (std::vector<int32_t>{t->find_token(kSpace + "hi")}));
}

TEST_F(SpmTokenizerTest, ControlTokensAreParsedOnlyWhenAsked) {
  const std::vector<int32_t> parsed = encode("hi</s>hi", false, true);
  // Text after a special token gets its own leading space, as in llama.cpp.
  EXPECT_EQ(parsed, (std::vector<int32_t>{id(kSpace + "hi"), 2, id(kSpace + "hi")}));
  const std::vector<int32_t> plain = encode("hi</s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tok->decode(plain), "hi</s>");
}

TEST_F(SpmTokenizerTest, UserDefinedTokensAreMatchedEvenWithoutParseSpecial) {
  EXPECT_EQ(encode("a<x>", false, false),
            (std::vector<int32_t>{id(kSpace + "a"), id("<x>")}));
}

TEST_F(SpmTokenizerTest, TokenPieceUnescapesSpacesAndDecodesBytes) {
  EXPECT_EQ(tok->token_piece(id(kSpace + "hi")), " hi");
  EXPECT_EQ(tok->token_piece(id("<0x41>")), "A");
  EXPECT_EQ(tok->token_piece(id("<0x0A>")), "\n");
  EXPECT_EQ(tok->token_piece(1), "<s>");
  EXPECT_THROW(tok->token_piece(-1), Error);
  EXPECT_THROW(tok->token_piece(tok->n_vocab()), Error);
}

TEST_F(SpmTokenizerTest, DecodeRemovesThePrefixSpaceAndSkipsControlTokens) {
  EXPECT_EQ(tok->decode(encode("hi hi", true)), "hi hi");
  EXPECT_EQ(tok->decode(encode(" hi", false)), " hi");
  EXPECT_EQ(tok->decode(encode("hi", true), false), "<s> hi");
  EXPECT_EQ(tok->decode(encode("abc\xc3\xa9")), "abc\xc3\xa9");
}

TEST_F(SpmTokenizerTest, ReportsSpecialIdsAndFlags) {
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(id("<x>")));
  EXPECT_TRUE(tok->is_end_of_generation(2));
  EXPECT_FALSE(tok->is_end_of_generation(1));
  EXPECT_EQ(tok->model(), "llama");
}

TEST(SpmVocabValidation, RejectsDuplicateTextsAndOutOfRangeIds) {
  Vocab dup = make_spm_vocab({{"a", -1}, {"a", -2}});
  EXPECT_THROW(Tokenizer::from_vocab(std::move(dup)), Error);
  Vocab bad_bos = make_spm_vocab({{"a", -1}});
  bad_bos.bos_id = 100000;
  EXPECT_THROW(Tokenizer::from_vocab(std::move(bad_bos)), Error);
  Vocab no_bos = make_spm_vocab({{"a", -1}});
  no_bos.bos_id = -1;  // add_bos is still true
  EXPECT_THROW(Tokenizer::from_vocab(std::move(no_bos)), Error);
  EXPECT_THROW(Tokenizer::from_vocab(Vocab{}), Error);
}

TEST(SpmEncodePerformance, LongInputsStayFast) {
  // A quadratic merge loop would take minutes here; the priority queue takes milliseconds.
  auto t = Tokenizer::from_vocab(make_spm_vocab({{kSpace, -1}, {"a", -1}, {"aa", -1}, {"aaaa", -0.5f}}));
  const std::string text(200000, 'a');
  const std::vector<int32_t> ids = t->encode(text, false, false);
  EXPECT_EQ(t->decode(ids), text);
}

}  // namespace
}  // namespace px
