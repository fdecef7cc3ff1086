// StreamingDetokenizer: decode() one token at a time without ever cutting a UTF-8 character.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace px {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDetokenizer::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  std::string piece = tokenizer_.token_piece(id);
  if (first_) {
    // Same rule as decode(): the space SentencePiece put in front of the text goes.
    if (tokenizer_.adds_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  const size_t ready = unicode::complete_prefix_length(pending_);
  std::string out = unicode::sanitize(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamingDetokenizer::flush() {
  // Whatever is still held can no longer complete: each byte becomes U+FFFD.
  std::string out = unicode::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace px
