// Pre-tokenizer expressions per tokenizer.ggml.pre. Expected pieces follow from the
// tokenizer.json expressions of each model family, applied one after the other.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"

namespace px {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view name, std::string_view text) {
  PreTokenizer pre(name);
  Pieces out;
  for (std::string_view piece : pre.split(text)) out.emplace_back(piece);
  return out;
}

TEST(PreTokenizer, Gpt2KeepsOneSpaceWithTheNextWord) {
  EXPECT_EQ(split("gpt-2", "Hello world's  test 123!!"),
            (Pieces{"Hello", " world", "'s", " ", " test", " 123", "!!"}));
  EXPECT_EQ(split("gpt-2", "a \n b"), (Pieces{"a", " \n", " b"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndNewlines) {
  EXPECT_EQ(split("llama3", "12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(split("llama-bpe", "  Hello\n\n"), (Pieces{" ", " Hello", "\n\n"}));
  EXPECT_EQ(split("llama3", "I'M ok"), (Pieces{"I", "'M", " ok"}));
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(split("qwen2", "x12345"), (Pieces{"x", "1", "2", "3", "4", "5"}));
}

TEST(PreTokenizer, StarcoderSplitsDigitsBeforeWords) {
  EXPECT_EQ(split("starcoder", "x=12"), (Pieces{"x", "=", "1", "2"}));
}

TEST(PreTokenizer, FalconCutsPunctuationThenDigitTriples) {
  EXPECT_EQ(split("falcon", "a,b 12345"), (Pieces{"a", ",", "b", " ", "123", "45"}));
}

TEST(PreTokenizer, DeepseekCoderSplitsLinesLettersAndDigits) {
  EXPECT_EQ(split("deepseek-coder", "Hi 42\n"), (Pieces{"Hi", " ", "4", "2", "\n"}));
  EXPECT_EQ(split("deepseek-coder", "\xe6\x88\x91\xe6\x83\xb3"), (Pieces{"\xe6\x88\x91\xe6\x83\xb3"}));
}

TEST(PreTokenizer, DeepseekLlmSeparatesScripts) {
  EXPECT_EQ(split("deepseek-llm", "Hello, \xe4\xb8\x96\xe7\x95\x8c 2024\n"),
            (Pieces{"Hello", ",", " ", "\xe4\xb8\x96\xe7\x95\x8c", " ", "2024", "\n"}));
}

TEST(PreTokenizer, DefaultListCutsSymbolsAndDigitTriples) {
  EXPECT_EQ(split("default", "a+b=12345"), (Pieces{"a", "+", "b", "=", "123", "45"}));
}

TEST(PreTokenizer, Gpt4oSplitsAtCaseChanges) {
  EXPECT_EQ(split("gpt-4o", "HelloWorld 1234"), (Pieces{"Hello", "World", " ", "123", "4"}));
}

TEST(PreTokenizer, UnknownNamesFallBackToGpt2) {
  EXPECT_FALSE(PreTokenizer::is_known("no-such-pre"));
  EXPECT_TRUE(PreTokenizer::is_known("falcon"));
  EXPECT_EQ(split("no-such-pre", "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(PreTokenizer::traits("no-such-pre").name, "gpt-2");
  EXPECT_EQ(PreTokenizer::traits("llama-bpe").name, "llama3");
  EXPECT_TRUE(PreTokenizer::traits("llama-bpe").ignore_merges);
}

TEST(PreTokenizer, RejectsInvalidUtf8) {
  PreTokenizer pre("gpt-2");
  EXPECT_THROW(pre.split("ab\xff"), Error);
}

TEST(PreTokenizer, PiecesAlwaysConcatenateToTheInput) {
  const std::vector<std::string> names = {"gpt-2", "default", "llama3", "qwen2", "qwen35",
                                          "starcoder", "falcon", "deepseek-coder", "deepseek-llm",
                                          "deepseek-v3", "gpt-4o", "tekken"};
  const std::vector<std::string> texts = {
      "", " ", "\n\n\t ", "Hello, y'all! How are you \xf0\x9f\x98\x81 ?",
      "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple\xe5\xb7\xa5\xe4\xbd\x9c" "1314151\xe5\xa4\xa9\xef\xbd\x9e",
      "   Hello\n    Hello", "C\xe1\xbb\xad" "a Vi\xe1\xbb\x87t", "x\xc2\xa0y\xe3\x80\x80z  ",
      "\xe1\x9e\x80\xe1\x9e\xb6\xe1\x9e\x93\xe1\x9f\x8b"};
  for (const std::string& name : names) {
    PreTokenizer pre(name);
    for (const std::string& text : texts) {
      std::string joined;
      for (std::string_view piece : pre.split(text)) {
        EXPECT_FALSE(piece.empty()) << name;
        joined += piece;
      }
      EXPECT_EQ(joined, text) << name;
    }
  }
}

}  // namespace
}  // namespace px
