// Loading tokenizers from tokenizer.ggml.* metadata, and `parallax tokenize` on such files.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_vocabs.h"

namespace px {
namespace {

using test_vocabs::kSpace;

class TokenizerGgufTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "/tokenizer_gguf_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // <unk> <s> </s> ▁ h i hi ▁hi, SentencePiece style.
  static GgufWriter spm_writer() {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", kSpace, "h", "i", "hi", kSpace + "hi"});
    w.set_float32s("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -1, -2, -1});
    w.set_int32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1});
    return w;
  }

  // 256 byte symbols (id = byte), "ab" (256), <|endoftext|> (257); merge "a b".
  static GgufWriter bpe_writer() {
    GgufWriter w;
    w.set_string("general.architecture", "gpt2");
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "gpt-2");
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(unicode::byte_to_symbol(static_cast<uint8_t>(b)));
    tokens.push_back("ab");
    tokens.push_back("<|endoftext|>");
    std::vector<int32_t> types(tokens.size(), 1);
    types.back() = 3;
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_int32s("tokenizer.ggml.token_type", types);
    w.set_strings("tokenizer.ggml.merges", {"a b"});
    w.set_uint32("tokenizer.ggml.bos_token_id", 257);
    w.set_uint32("tokenizer.ggml.eos_token_id", 257);
    return w;
  }

  std::string write(const GgufWriter& writer, const std::string& name = "vocab.gguf") {
    const std::string path = dir_ + "/" + name;
    writer.write(path);
    return path;
  }

  std::shared_ptr<Tokenizer> load(const GgufWriter& writer) {
    const auto file = GgufFile::open(write(writer));
    return Tokenizer::from_gguf(*file);
  }

  // The px::Error message loading `writer` gives ("" when it loads).
  std::string load_error(const GgufWriter& writer) {
    try {
      load(writer);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(TokenizerGgufTest, LoadsSentencePieceVocabularyWithLlamaDefaults) {
  const auto tok = load(spm_writer());
  EXPECT_EQ(tok->model(), "llama");
  EXPECT_EQ(tok->n_vocab(), 8);
  EXPECT_EQ(tok->bos_id(), 1);  // defaults <s> = 1, </s> = 2, <unk> = 0 without the keys
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_TRUE(tok->adds_space_prefix());
  EXPECT_EQ(tok->encode("hi hi", true, false), (std::vector<int32_t>{1, 7, 7}));
  EXPECT_EQ(tok->decode(tok->encode("hi hi", true, false)), "hi hi");
}

TEST_F(TokenizerGgufTest, ReadsFlagsSpecialIdsAndChatTemplate) {
  GgufWriter w = spm_writer();
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_uint32("tokenizer.ggml.eos_token_id", 1);
  w.set_string("tokenizer.chat_template", "{{ messages }}");
  const auto tok = load(w);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_TRUE(tok->add_eos());
  EXPECT_FALSE(tok->adds_space_prefix());
  EXPECT_EQ(tok->encode("hi", true, false), (std::vector<int32_t>{6, 1}));
  EXPECT_EQ(tok->chat_template(), "{{ messages }}");
  EXPECT_TRUE(tok->is_end_of_generation(1));
}

TEST_F(TokenizerGgufTest, LoadsByteLevelBpeVocabulary) {
  const auto tok = load(bpe_writer());
  EXPECT_EQ(tok->model(), "gpt2");
  EXPECT_FALSE(tok->add_bos());  // gpt2 vocabularies add BOS only when the key says so
  EXPECT_EQ(tok->encode("ab ab<|endoftext|>", true, true), (std::vector<int32_t>{256, ' ', 256, 257}));
  EXPECT_TRUE(tok->is_end_of_generation(257));
}

TEST_F(TokenizerGgufTest, Llama3PreTokenizerAddsBosUnlessTheKeySaysOtherwise) {
  GgufWriter w = bpe_writer();
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  EXPECT_TRUE(load(w)->add_bos());
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  EXPECT_FALSE(load(w)->add_bos());
}

TEST_F(TokenizerGgufTest, RejectsUnsupportedTokenizerModels) {
  for (const char* model : {"bert", "rwkv", "t5", "no_vocab"}) {
    GgufWriter w = spm_writer();
    w.set_string("tokenizer.ggml.model", model);
    const std::string error = load_error(w);
    EXPECT_NE(error.find(std::string("'") + model + "'"), std::string::npos) << error;
    EXPECT_NE(error.find("'llama'"), std::string::npos) << error;
  }
}

TEST_F(TokenizerGgufTest, RejectsArraysOfDifferentLengths) {
  GgufWriter scores = spm_writer();
  scores.set_float32s("tokenizer.ggml.scores", {0, 0, 0});
  EXPECT_NE(load_error(scores).find("tokenizer.ggml.scores has 3 entries"), std::string::npos);
  GgufWriter types = spm_writer();
  types.set_int32s("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1, 1, 1});
  EXPECT_NE(load_error(types).find("tokenizer.ggml.token_type has 9 entries"), std::string::npos);
}

TEST_F(TokenizerGgufTest, RejectsOutOfRangeTokenIdsAndTypes) {
  GgufWriter bos = spm_writer();
  bos.set_uint32("tokenizer.ggml.bos_token_id", 8);
  EXPECT_NE(load_error(bos).find("tokenizer.ggml.bos_token_id = 8"), std::string::npos);
  GgufWriter type = spm_writer();
  type.set_int32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 7, 1, 1});
  EXPECT_NE(load_error(type).find("tokenizer.ggml.token_type[5] = 7"), std::string::npos);
}

TEST_F(TokenizerGgufTest, IgnoresAnOutOfRangePaddingId) {
  GgufWriter w = spm_writer();
  w.set_uint32("tokenizer.ggml.padding_token_id", 8);
  EXPECT_EQ(load_error(w), "");
}

TEST_F(TokenizerGgufTest, RejectsMissingOrMistypedArrays) {
  GgufWriter no_merges;
  no_merges.set_string("tokenizer.ggml.model", "gpt2");
  no_merges.set_strings("tokenizer.ggml.tokens", {"a", "b"});
  EXPECT_NE(load_error(no_merges).find("tokenizer.ggml.merges is missing"), std::string::npos);

  GgufWriter int_tokens;
  int_tokens.set_string("tokenizer.ggml.model", "llama");
  int_tokens.set_int32s("tokenizer.ggml.tokens", {1, 2, 3});
  EXPECT_NE(load_error(int_tokens).find("should be an array of strings"), std::string::npos);

  GgufWriter no_model;
  no_model.set_strings("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(load_error(no_model).find("tokenizer.ggml.model"), std::string::npos);
}

TEST_F(TokenizerGgufTest, RejectsDuplicateTokenTexts) {
  GgufWriter w = spm_writer();
  w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", kSpace, "h", "i", "hi", "hi"});
  EXPECT_NE(load_error(w).find("appears twice"), std::string::npos);
}

TEST_F(TokenizerGgufTest, Phi3SpecialTokensSwallowTheWhitespaceAfterThem) {
  // Phi-3's added tokens strip what follows (HF rstrip); GGUF only says so by the model name.
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", kSpace, "b", kSpace + "b", "<|end|>"});
  w.set_float32s("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -1, 0});
  w.set_int32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 3});
  const auto plain = load(w);
  EXPECT_EQ(plain->encode("<|end|> b", false, true), (std::vector<int32_t>{6, 3, 5}));
  w.set_string("general.name", "Phi3");
  const auto phi3 = load(w);
  EXPECT_EQ(phi3->encode("<|end|> b", false, true), (std::vector<int32_t>{6, 5}));
}

// ---- parallax tokenize ----

std::string run_command(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "(popen failed)";
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  pclose(pipe);
  return output;
}

TEST_F(TokenizerGgufTest, CliPrintsIdsWithoutBosAndWithoutParsingSpecials) {
  const std::string path = write(bpe_writer());
  const std::string input_path = dir_ + "/input.txt";
  {
    FILE* input = fopen(input_path.c_str(), "wb");
    ASSERT_NE(input, nullptr);
    fputs("ab ab<|endoftext|>", input);
    fclose(input);
  }
  const std::string base = std::string(PARALLAX_BINARY) + " tokenize -m " + path;
  // "<|endoftext|>" stays text: < | endoftext | > as byte tokens ('e','n',... are single bytes).
  std::string expected = "256 32 256";
  for (char c : std::string("<|endoftext|>")) expected += " " + std::to_string(static_cast<uint8_t>(c));
  EXPECT_EQ(run_command(base + " < " + input_path), expected + "\n");
  EXPECT_EQ(run_command(base + " --parse-special < " + input_path), "256 32 256 257\n");
}

TEST_F(TokenizerGgufTest, CliReportsUnsupportedTokenizers) {
  GgufWriter w = spm_writer();
  w.set_string("tokenizer.ggml.model", "bert");
  const std::string path = write(w);
  const std::string output =
      run_command(std::string(PARALLAX_BINARY) + " tokenize -m " + path + " < /dev/null 2>&1; echo rc=$?");
  EXPECT_NE(output.find("'bert'"), std::string::npos) << output;
  EXPECT_NE(output.find("rc=1"), std::string::npos) << output;
}

}  // namespace
}  // namespace px
