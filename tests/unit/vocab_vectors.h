#pragma once
// llama.cpp's tokenizer test vectors (X.gguf.inp / X.gguf.out in the shared vocab folder):
// reading and splitting them as llama.cpp's tests/test-tokenizer-0.cpp does.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace px::test {

inline constexpr std::string_view kVocabCaseSeparator = "\n__ggml_vocab_test__\n";

// $PARALLAX_SHARED_DIR/vocab, else the shared folder the build was configured with.
inline std::filesystem::path vocab_dir() {
  if (const char* env = std::getenv("PARALLAX_SHARED_DIR"); env != nullptr && *env != '\0') {
    return std::filesystem::path(env) / "vocab";
  }
  return std::filesystem::path(PARALLAX_SHARED_DIR) / "vocab";
}

inline std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("can not open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each case is the text between separators; the newline after a separator and the one before
// the next belong to the separator.
inline std::vector<std::string> split_vocab_cases(const std::string& raw) {
  std::vector<std::string> cases;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(kVocabCaseSeparator, pos);
    if (next == std::string::npos) {
      cases.push_back(raw.substr(pos));
      break;
    }
    cases.push_back(raw.substr(pos, next - pos));
    pos = next + kVocabCaseSeparator.size();
  }
  return cases;
}

// One line of space-separated ids per case.
inline std::vector<std::vector<int32_t>> read_expected_ids(const std::filesystem::path& path) {
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(read_whole_file(path));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream numbers(line);
    std::vector<int32_t> ids;
    for (int32_t id; numbers >> id;) ids.push_back(id);
    expected.push_back(std::move(ids));
  }
  return expected;
}

inline std::string describe_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return "[" + out + "]";
}

}  // namespace px::test
