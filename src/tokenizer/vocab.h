#pragma once
// The vocabulary a tokenizer works from: token texts, scores and types, BPE merges and the
// special-token settings, as read from tokenizer.ggml.* (or built by hand in tests).
// build_index() validates everything and derives the lookup tables the encoders use.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace px {

class GgufFile;
class GgufWriter;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class VocabKind {
  Spm,  // tokenizer.ggml.model = "llama": SentencePiece pieces merged by score
  Bpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE merged by rank
};

// Hash for string keys that also accepts string_view lookups without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct TokenInfo {
  std::string text;
  float score = 0.0f;
  TokenType type = TokenType::Normal;
  // Whitespace next to this token is dropped when it is matched as a special token
  // (HF "added token" lstrip/rstrip; used by Phi-3).
  bool lstrip = false;
  bool rstrip = false;
};

struct Vocab {
  // ---- Filled by the loader (or a test) ----
  VocabKind kind = VocabKind::Spm;
  std::string pre = "default";     // tokenizer.ggml.pre (BPE only)
  // BPE: expressions to split with instead of the set `pre` names (a tokenizer.json Split
  // regex that matches no named set). Empty for GGUF vocabularies.
  std::vector<std::string> pre_patterns;
  std::vector<TokenInfo> tokens;
  std::vector<std::string> merges;  // "left right", in rank order (BPE only)
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  int32_t eot_id = -1;
  int32_t eom_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: a U+2581 goes in front of the text
  bool ignore_merges = false;     // BPE: a pre-token that is itself a token is not merged (Llama 3)
  bool normalize_nfc = false;     // text (outside special tokens) is NFC-normalized first (Qwen)
  std::optional<std::string> chat_template;
  std::string source = "vocabulary";  // named in error messages (the file name when loaded)

  // ---- Derived by build_index() ----
  StringMap token_to_id;
  StringMap merge_ranks;  // rank of the merge (left, right), keyed by merge_key(left, right)
  // Tokens that are cut out of the text before encoding (control, user-defined, unknown),
  // longest text first.
  std::vector<int32_t> special_tokens;
  std::array<int32_t, 256> byte_tokens{};  // SPM <0xXX> token per byte, -1 when absent
  std::unordered_set<int32_t> end_of_generation;
  size_t skipped_merges = 0;  // merges dropped because they name unknown tokens
  bool indexed = false;       // build_index() has run

  // Validates the fields above (ids in range, no duplicate or empty token texts, merges that
  // parse) and fills the derived tables. Throws px::Error naming `source` on any problem.
  void build_index();

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(std::string_view text) const;  // -1 when absent
  int32_t merge_rank(std::string_view left, std::string_view right) const;  // -1 when absent
  bool valid_id(int32_t id) const { return id >= 0 && id < n_tokens(); }
  TokenType type_of(int32_t id) const { return tokens[static_cast<size_t>(id)].type; }

  static std::string merge_key(std::string_view left, std::string_view right);
};

// Reads tokenizer.ggml.* from a GGUF file into a Vocab and calls build_index(). Rejects
// tokenizer models other than "llama" and "gpt2" with a message that says so.
Vocab load_vocab(const GgufFile& file);

// Writes the tokenizer.ggml.* keys load_vocab() reads (for `model convert`).
void write_vocab_gguf(const Vocab& vocab, GgufWriter& writer);

}  // namespace px
