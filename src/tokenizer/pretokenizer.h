#pragma once
// Byte-level BPE pre-tokenizers: the text is cut into words by a list of regular expressions
// (PCRE2, UTF + Unicode properties, JIT-compiled when available) chosen by
// tokenizer.ggml.pre. Each expression in turn splits every piece the previous ones left:
// its matches become pieces and so does the text between matches (llama.cpp's semantics).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace px {

// Behaviour that goes with a pre-tokenizer name besides its expressions.
struct PreTokenizerTraits {
  std::string name;            // canonical name ("gpt-2", "llama3", ...)
  bool ignore_merges = false;  // a word that is itself a token skips merging (Llama 3, Tekken)
  bool add_bos = false;        // default for tokenizer.ggml.add_bos_token
};

class PreTokenizer {
 public:
  // Unknown names fall back to the GPT-2 expression with a warning.
  explicit PreTokenizer(std::string_view name);
  // Expressions given by the caller (a tokenizer.json Split regex that matches no named set);
  // `traits.name` is only used in messages.
  PreTokenizer(PreTokenizerTraits traits, const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  static bool is_known(std::string_view name);
  // Traits of `name` (of "gpt-2" when the name is unknown).
  static PreTokenizerTraits traits(std::string_view name);

  const PreTokenizerTraits& traits() const { return traits_; }

  // Splits `text` (which must be valid UTF-8; px::Error otherwise) into pieces whose
  // concatenation is `text`. The views point into `text`.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Pattern;
  PreTokenizerTraits traits_;
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

}  // namespace px
