// Byte-level BPE tokenizer on small hand-built vocabularies.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"
#include "tokenizer_test_vocabs.h"

namespace px {
namespace {

const std::string kG = "\xc4\xa0";  // Ġ, the byte-level symbol of a space

using test_vocabs::make_bpe_vocab;

int32_t id_of(const Tokenizer& tok, const std::string& text) {
  const int32_t id = tok.find_token(text);
  EXPECT_GE(id, 0) << "no token " << text;
  return id;
}

TEST(BpeTokenizer, MergesByRankNotByPosition) {
  auto bc_first = Tokenizer::from_vocab(make_bpe_vocab({"b c", "a b"}));
  EXPECT_EQ(bc_first->encode("abc", false, false), (std::vector<int32_t>{'a', id_of(*bc_first, "bc")}));
  auto ab_first = Tokenizer::from_vocab(make_bpe_vocab({"a b", "b c"}));
  EXPECT_EQ(ab_first->encode("abc", false, false), (std::vector<int32_t>{id_of(*ab_first, "ab"), 'c'}));
}

TEST(BpeTokenizer, MergesNeverCrossPreTokenizerWords) {
  // "o Ġ" has the best rank, but "hello" and " world" are separate words.
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({"o " + kG, "h e", "l l", "he ll", "hell o",
                                                   kG + " w", "o r", kG + "w or", "l d",
                                                   kG + "wor ld"}));
  EXPECT_EQ(tok->encode("hello world", false, false),
            (std::vector<int32_t>{id_of(*tok, "hello"), id_of(*tok, kG + "world")}));
}

TEST(BpeTokenizer, WhitespaceAndControlBytesUseByteSymbols) {
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({}));
  EXPECT_EQ(tok->encode(" ", false, false), (std::vector<int32_t>{' '}));
  EXPECT_EQ(tok->encode("\n", false, false), (std::vector<int32_t>{'\n'}));
  EXPECT_EQ(tok->encode("\t\x01", false, false), (std::vector<int32_t>{'\t', 1}));
}

TEST(BpeTokenizer, TokenPieceMapsSymbolsBackToBytes) {
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({kG + " w"}));
  EXPECT_EQ(tok->token_piece(id_of(*tok, kG + "w")), " w");
  EXPECT_EQ(tok->token_piece(0xE9), "\xe9");
  EXPECT_EQ(tok->token_piece('\n'), "\n");
  const std::string text = "caf\xc3\xa9 \xf0\x9f\xa6\x99\n\tx = 1;";
  EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text);
}

TEST(BpeTokenizer, InvalidUtf8IsEncodedAsReplacementCharacter) {
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({}));
  EXPECT_EQ(tok->encode("a\xff", false, false), (std::vector<int32_t>{'a', 0xEF, 0xBF, 0xBD}));
}

TEST(BpeTokenizer, ControlTokensAreParsedOnlyWhenAsked) {
  auto tok = Tokenizer::from_vocab(
      make_bpe_vocab({}, {{"<|endoftext|>", 0, TokenType::Control}}));
  const int32_t eot = id_of(*tok, "<|endoftext|>");
  EXPECT_EQ(tok->encode("a<|endoftext|>", false, true), (std::vector<int32_t>{'a', eot}));
  const std::vector<int32_t> plain = tok->encode("a<|endoftext|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_EQ(tok->decode(plain), "a<|endoftext|>");
  EXPECT_EQ(tok->decode(tok->encode("a<|endoftext|>", false, true)), "a");
  EXPECT_EQ(tok->decode(tok->encode("a<|endoftext|>", false, true), false), "a<|endoftext|>");
}

TEST(BpeTokenizer, LongestSpecialTokenWins) {
  auto tok = Tokenizer::from_vocab(make_bpe_vocab(
      {}, {{"<a>", 0, TokenType::Control}, {"<a><b>", 0, TokenType::Control}, {"<b>", 0, TokenType::Control}}));
  EXPECT_EQ(tok->encode("<a><b><b>", false, true),
            (std::vector<int32_t>{id_of(*tok, "<a><b>"), id_of(*tok, "<b>")}));
}

TEST(BpeTokenizer, WellKnownEndOfTurnTokensEndGeneration) {
  // Typed as normal by a sloppy converter: still end-of-generation and treated as control.
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({}, {{"<|im_end|>"}, {"<|other|>", 0, TokenType::Control}}));
  const int32_t im_end = id_of(*tok, "<|im_end|>");
  EXPECT_TRUE(tok->is_end_of_generation(im_end));
  EXPECT_TRUE(tok->is_special(im_end));
  EXPECT_FALSE(tok->is_end_of_generation(id_of(*tok, "<|other|>")));
  EXPECT_FALSE(tok->is_end_of_generation('a'));
}

TEST(BpeTokenizer, AddsBosOnlyWhenTheVocabularyAsks) {
  Vocab v = make_bpe_vocab({}, {{"<|begin|>", 0, TokenType::Control}});
  v.bos_id = 256;
  auto without = Tokenizer::from_vocab(v);
  EXPECT_FALSE(without->add_bos());
  EXPECT_EQ(without->encode("a", true, false), (std::vector<int32_t>{'a'}));
  v.add_bos = true;
  auto with = Tokenizer::from_vocab(v);
  EXPECT_EQ(with->encode("a", true, false), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(with->decode(with->encode("a", true, false)), "a");
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeWordTokens) {
  Vocab v = make_bpe_vocab({}, {{"xyz"}}, "llama3");
  v.ignore_merges = true;
  auto whole = Tokenizer::from_vocab(v);
  EXPECT_EQ(whole->encode("xyz", false, false), (std::vector<int32_t>{id_of(*whole, "xyz")}));
  v.ignore_merges = false;
  auto merged = Tokenizer::from_vocab(v);
  EXPECT_EQ(merged->encode("xyz", false, false), (std::vector<int32_t>{'x', 'y', 'z'}));
}

TEST(BpeVocab, SkipsMergesThatNameUnknownTokens) {
  Vocab v = make_bpe_vocab({"a b"});
  v.merges = {"a b", "a qq", "nospace", "b c"};  // "qq" and "bc" are no tokens
  v.build_index();
  EXPECT_EQ(v.skipped_merges, 3u);
  EXPECT_EQ(v.merge_rank("a", "b"), 0);
  EXPECT_EQ(v.merge_rank("b", "c"), -1);
  auto tok = Tokenizer::from_vocab(std::move(v));
  EXPECT_EQ(tok->encode("abc", false, false), (std::vector<int32_t>{id_of(*tok, "ab"), 'c'}));
}

TEST(BpeVocab, UnknownPreTokenizerFallsBackToGpt2) {
  // "b Ġ" ranks first, but GPT-2's expression puts the space in front of the next word.
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({"b " + kG, "a b"}, {}, "no-such-pre"));
  EXPECT_EQ(tok->encode("ab ab", false, false),
            (std::vector<int32_t>{id_of(*tok, "ab"), ' ', id_of(*tok, "ab")}));
}

TEST(BpeEncodePerformance, LongInputsStayFast) {
  auto tok = Tokenizer::from_vocab(make_bpe_vocab({"a a", "aa aa", "aaaa aaaa"}));
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "aaaaaaaaa ";
  text += std::string(100000, 'a');  // one huge word
  EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text);
}

}  // namespace
}  // namespace px
