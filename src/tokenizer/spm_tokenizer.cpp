#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace px {

namespace {

// A run of the text in a doubly linked list; merged-away symbols keep length 0.
struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t length;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t length;  // bytes of left + right when queued; a mismatch later means it is stale
};

// Highest score first; among equal scores the leftmost pair, so results are deterministic.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const Vocab& vocab, std::string_view text) : vocab_(vocab), text_(text) {}

  void encode(std::vector<int32_t>& out) {
    for (size_t pos = 0; pos < text_.size();) {
      const size_t length =
          std::min(unicode::sequence_length(static_cast<uint8_t>(text_[pos])), text_.size() - pos);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(Symbol{index - 1, pos + length < text_.size() ? index + 1 : -1, pos, length});
      pos += length;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_queue(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[static_cast<size_t>(bigram.left)];
      Symbol& right = symbols_[static_cast<size_t>(bigram.right)];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
        continue;  // one side has changed since this pair was queued
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
  void try_queue(int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    const Symbol& r = symbols_[static_cast<size_t>(right)];
    const size_t length = l.length + r.length;
    const int32_t id = vocab_.find(text_.substr(l.begin, length));
    if (id < 0) return;
    queue_.push(Bigram{left, right, vocab_.tokens[static_cast<size_t>(id)].score, length});
  }

  // A merged symbol is always a token; a single character may not be, and then its bytes go
  // out as byte tokens, or the whole character as the unknown token.
  void emit(const Symbol& symbol, std::vector<int32_t>& out) const {
    const std::string_view piece = text_.substr(symbol.begin, symbol.length);
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    const size_t mark = out.size();
    for (char c : piece) {
      const int32_t byte_id = vocab_.byte_tokens[static_cast<uint8_t>(c)];
      if (byte_id < 0) {
        out.resize(mark);
        if (vocab_.unk_id < 0) {
          fail("{}: can not encode byte 0x{:02X}: the vocabulary has neither <0x{:02X}> nor an "
               "unknown token",
               vocab_.source, static_cast<uint8_t>(c), static_cast<uint8_t>(c));
        }
        out.push_back(vocab_.unk_id);
        return;
      }
      out.push_back(byte_id);
    }
  }

  const Vocab& vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue_;
};

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  SpmSession(vocab, text).encode(out);
}

}  // namespace px
