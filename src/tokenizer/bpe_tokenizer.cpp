#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <queue>

#include "tokenizer/unicode.h"

namespace px {

namespace {

struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  int32_t rank;
  size_t length;  // bytes of left + right when queued; a mismatch later means it is stale
};

// Lowest merge rank first; among equal ranks the leftmost pair.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class BpeSession {
 public:
  BpeSession(const Vocab& vocab, std::string_view word) : vocab_(vocab), word_(word) {}

  void encode(std::vector<int32_t>& out) {
    for (size_t pos = 0; pos < word_.size();) {
      const size_t length =
          std::min(unicode::sequence_length(static_cast<uint8_t>(word_[pos])), word_.size() - pos);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(Symbol{index - 1, pos + length < word_.size() ? index + 1 : -1, pos, length});
      pos += length;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_queue(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[static_cast<size_t>(bigram.left)];
      Symbol& right = symbols_[static_cast<size_t>(bigram.right)];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
        continue;
      }
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[static_cast<size_t>(right.next)].prev = bigram.left;
      try_queue(left.prev, bigram.left);
      try_queue(bigram.left, left.next);
    }

    for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[static_cast<size_t>(i)].next) {
      emit(symbols_[static_cast<size_t>(i)], out);
    }
  }

 private:
  std::string_view text_of(const Symbol& symbol) const {
    return word_.substr(symbol.begin, symbol.length);
  }

  void try_queue(int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    const Symbol& r = symbols_[static_cast<size_t>(right)];
    const int32_t rank = vocab_.merge_rank(text_of(l), text_of(r));
    if (rank < 0) return;
    queue_.push(Bigram{left, right, rank, l.length + r.length});
  }

  // Merges only produce vocabulary tokens, so a miss is a single symbol the vocabulary lacks.
  // Such a character becomes the unknown token, or is dropped when there is none (as in
  // llama.cpp); byte-level vocabularies hold all 256 byte symbols, so this is rare.
  void emit(const Symbol& symbol, std::vector<int32_t>& out) const {
    const std::string_view piece = text_of(symbol);
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    for (size_t pos = 0; pos < piece.size();) {
      const size_t length =
          std::min(unicode::sequence_length(static_cast<uint8_t>(piece[pos])), piece.size() - pos);
      const int32_t char_id = vocab_.find(piece.substr(pos, length));
      if (char_id >= 0) {
        out.push_back(char_id);
      } else if (vocab_.unk_id >= 0) {
        out.push_back(vocab_.unk_id);
      }
      pos += length;
    }
  }

  const Vocab& vocab_;
  std::string_view word_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue_;
};

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
  BpeSession(vocab, word).encode(out);
}

}  // namespace px
