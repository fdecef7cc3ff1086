// Hugging Face tokenizer.json loading: what is refused, and how.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = test::temp_dir() + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& path) {
  try {
    load_hf_vocab(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfTokenizer, LoadsAByteLevelBpeAndEncodes) {
  // A tiny GPT-2 style tokenizer: bytes a, b, space-symbol, and the merge "a b" -> "ab".
  const std::string path = write("tiny_tokenizer.json", R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u0120": 2, "ab": 3}, "merges": ["a b"]},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "added_tokens": [{"id": 4, "content": "<|end|>", "special": true}]
  })");
  const auto tokenizer = Tokenizer::from_hf(path);
  EXPECT_EQ(tokenizer->n_vocab(), 5);
  EXPECT_EQ(tokenizer->encode("ab", false, false), (std::vector<int32_t>{3}));
  EXPECT_EQ(tokenizer->encode("ab<|end|>", false, true), (std::vector<int32_t>{3, 4}));
  EXPECT_TRUE(tokenizer->is_special(4));
}

TEST(HfTokenizer, RefusesWhatItCannotReadWithTheFileName) {
  EXPECT_NE(error_of(test::temp_dir() + "missing.json").find("cannot open"), std::string::npos);
  const std::string bad = write("bad.json", "{ not json");
  EXPECT_NE(error_of(bad).find("invalid JSON"), std::string::npos);
  const std::string wordpiece = write("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_NE(error_of(wordpiece).find("'WordPiece' is not supported"), std::string::npos) << error_of(wordpiece);
  const std::string gap = write("gap.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []},
    "pre_tokenizer": {"type": "ByteLevel", "use_regex": true}})");
  EXPECT_NE(error_of(gap).find("token id 1 is not defined"), std::string::npos) << error_of(gap);
  const std::string metaspace = write("metaspace.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "Metaspace"}})");
  EXPECT_NE(error_of(metaspace).find("byte-level"), std::string::npos) << error_of(metaspace);
}

}  // namespace
}  // namespace px
