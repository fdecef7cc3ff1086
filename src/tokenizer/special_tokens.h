#pragma once
// Cuts special tokens out of the text before the encoder sees it.
//
// User-defined tokens are always cut out (as HF "added tokens" and llama.cpp do); control and
// unknown-type tokens only when parse_special is set. Longer tokens win: every occurrence of
// the longest token is taken first, then the next longest in what is left, and so on.
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace px {

struct TextFragment {
  int32_t token = -1;     // a special token, or -1 for raw text
  std::string_view text;  // the raw text (empty for a token)
};

class SpecialTokenMatcher {
 public:
  explicit SpecialTokenMatcher(const Vocab& vocab);

  // `text` split into raw pieces and special tokens, in order. Raw pieces are never empty.
  std::vector<TextFragment> partition(std::string_view text, bool parse_special) const;

 private:
  struct Candidate {
    int32_t priority;  // position in vocab.special_tokens (longest first)
    int32_t id;
    bool always;  // user-defined: matched even without parse_special
  };
  const Vocab& vocab_;
  std::vector<std::vector<Candidate>> by_first_byte_;  // [256]
  bool has_user_defined_ = false;
};

}  // namespace px
