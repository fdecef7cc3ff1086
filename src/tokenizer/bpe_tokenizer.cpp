#include "tokenizer/bpe_tokenizer.h"

#include "tokenizer/symbol_merge.h"
#include "tokenizer/unicode.h"

namespace px {

namespace {

// Merges only produce vocabulary tokens, so a miss is a single symbol the vocabulary lacks.
// Such a character becomes the unknown token, or is dropped when there is none (as in
// llama.cpp); byte-level vocabularies hold all 256 byte symbols, so this is rare.
void emit_piece(const Vocab& vocab, std::string_view piece, std::vector<int32_t>& out) {
  const int32_t id = vocab.find(piece);
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  for (size_t pos = 0; pos < piece.size();) {
    const size_t length = unicode::char_length_at(piece, pos);
    const int32_t char_id = vocab.find(piece.substr(pos, length));
    if (char_id >= 0) {
      out.push_back(char_id);
    } else if (vocab.unk_id >= 0) {
      out.push_back(vocab.unk_id);
    }
    pos += length;
  }
}

}  // namespace

void bpe_encode_word(const Vocab& vocab, std::string_view word, bool ignore_merges,
                     std::vector<int32_t>& out) {
  if (word.empty()) return;
  if (ignore_merges) {
    const int32_t id = vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  merge_symbols<int32_t>(
      word,
      [&](std::string_view left, std::string_view right, int32_t& priority) {
        const int32_t rank = vocab.merge_rank(left, right);
        if (rank < 0) return false;
        priority = -rank;  // the lowest rank merges first
        return true;
      },
      [&](std::string_view piece) { emit_piece(vocab, piece, out); });
}

}  // namespace px
