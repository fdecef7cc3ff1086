// llama.cpp's tokenizer test vectors: for every X.gguf.inp in the shared vocab folder, each
// case of the .inp (split on "__ggml_vocab_test__" lines as in llama.cpp's
// tests/test-tokenizer-0.cpp) must encode, without BOS and without parsing special tokens, to
// the ids on the matching line of X.gguf.out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"
#include "vocab_vectors.h"

namespace px {
namespace {

namespace fs = std::filesystem;

using test::describe_ids;
using test::read_expected_ids;
using test::read_whole_file;
using test::split_vocab_cases;
using test::vocab_dir;

constexpr std::string_view kNoFolder = "no_vocab_folder";

// Vocabulary names ("ggml-vocab-gpt-2") of every .gguf.inp in the folder, sorted; a single
// placeholder when the folder is absent, so the test can say so instead of vanishing.
std::vector<std::string> vocab_names() {
  std::vector<std::string> names;
  std::error_code error;
  const fs::path dir = vocab_dir();
  if (!fs::is_directory(dir, error)) return {std::string(kNoFolder)};
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const std::string file = entry.path().filename().string();
    const std::string suffix = ".gguf.inp";
    if (file.size() > suffix.size() && file.ends_with(suffix)) {
      names.push_back(file.substr(0, file.size() - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back(std::string(kNoFolder));
  return names;
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  if (name.starts_with("ggml-vocab-")) name = name.substr(11);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class TokenizerConformance : public testing::TestWithParam<std::string> {};

TEST_P(TokenizerConformance, EncodesEveryCaseLikeLlamaCpp) {
  if (GetParam() == kNoFolder) {
    GTEST_SKIP() << "no tokenizer vectors in " << vocab_dir()
                 << " (set PARALLAX_SHARED_DIR to the folder that holds vocab/)";
  }
  const fs::path base = vocab_dir() / GetParam();
  const fs::path gguf = base.string() + ".gguf";
  const fs::path inp = base.string() + ".gguf.inp";
  const fs::path out = base.string() + ".gguf.out";
  if (!fs::exists(gguf)) {
    GTEST_SKIP() << GetParam() << " has test vectors but no GGUF vocabulary in " << vocab_dir();
  }
  ASSERT_TRUE(fs::exists(out)) << out << " is missing";

  const std::vector<std::string> cases = split_vocab_cases(read_whole_file(inp));
  const std::vector<std::vector<int32_t>> expected = read_expected_ids(out);
  ASSERT_EQ(cases.size(), expected.size()) << inp << " and " << out << " hold different counts";

  const auto file = GgufFile::open(gguf.string());
  const auto tokenizer = Tokenizer::from_gguf(*file);
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> got = tokenizer->encode(cases[i], false, false);
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << GetParam() << " case " << i << " " << testing::PrintToString(cases[i])
                    << "\n  expected " << describe_ids(expected[i]) << "\n  got      "
                    << describe_ids(got);
    }
  }
  RecordProperty("cases_passed", static_cast<int>(passed));
  RecordProperty("cases_total", static_cast<int>(cases.size()));
  std::cout << "[ vectors  ] " << GetParam() << ": " << passed << "/" << cases.size()
            << " cases pass\n";
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, TokenizerConformance, testing::ValuesIn(vocab_names()),
                         test_name);

}  // namespace
}  // namespace px
