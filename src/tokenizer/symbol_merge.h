#pragma once
// The merge loop that byte-level BPE and SentencePiece encoding share: the text starts as one
// symbol per UTF-8 character, and the adjacent pair with the highest priority is merged until
// no adjacent pair may merge. The encoders differ only in a pair's priority (BPE: the lowest
// merge rank; SPM: the highest score of the joined token) and in how a final piece becomes
// tokens, so both are passed in.
#include <cstddef>
#include <queue>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace px {

// pair_priority(left, right, priority) -> bool: false when two adjacent pieces may not merge,
// else true with `priority` set. The pieces are adjacent in the text, so their concatenation
// is std::string_view(left.data(), left.size() + right.size()).
// Why not one double priority returned as std::optional: comparing doubles made the BPE loop
// ~3% slower than comparing its integer ranks, and with std::optional GCC stopped inlining
// SPM's pair scoring into the loop (measured with callgrind on 1 MB single-word inputs).
template <typename Priority, typename PairPriority>
class SymbolMerger {
 public:
  SymbolMerger(std::string_view text, const PairPriority& pair_priority)
      : text_(text), pair_priority_(pair_priority) {}

  // Merges, then calls emit_piece(piece) for every piece left, in text order.
  template <typename EmitPiece>
  void run(const EmitPiece& emit_piece) {
    for (size_t pos = 0; pos < text_.size();) {
      const size_t length = unicode::char_length_at(text_, pos);
      const int index = static_cast<int>(symbols_.size());
      const int next = pos + length < text_.size() ? index + 1 : -1;
      symbols_.push_back(Symbol{index - 1, next, pos, length});
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
      emit_piece(text_of(symbols_[static_cast<size_t>(i)]));
    }
  }

 private:
  // A run of the text in a doubly linked list (indices into symbols_, -1 at the ends).
  struct Symbol {
    int prev;
    int next;
    size_t begin;
    size_t length;  // 0 once merged into its left neighbour
  };

  struct Bigram {
    int left;
    int right;
    Priority priority;
    size_t length;  // bytes of left + right when queued; a mismatch later means it is stale
  };

  // Highest priority first; among equal priorities the leftmost pair, so results are
  // deterministic.
  struct LowerPriority {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };

  // Symbols always lie inside text_, so this needs none of substr's range checks.
  std::string_view text_of(const Symbol& symbol) const {
    return std::string_view(text_.data() + symbol.begin, symbol.length);
  }

  void try_queue(int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    const Symbol& r = symbols_[static_cast<size_t>(right)];
    Priority priority;
    if (pair_priority_(text_of(l), text_of(r), priority)) {
      queue_.push(Bigram{left, right, priority, l.length + r.length});
    }
  }

  std::string_view text_;
  const PairPriority& pair_priority_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue_;
};

// SymbolMerger<Priority, ...>(text, pair_priority).run(emit_piece), with the callback types
// deduced: merge_symbols<int32_t>(text, pair_priority, emit_piece).
template <typename Priority, typename PairPriority, typename EmitPiece>
void merge_symbols(std::string_view text, const PairPriority& pair_priority,
                   const EmitPiece& emit_piece) {
  SymbolMerger<Priority, PairPriority>(text, pair_priority).run(emit_piece);
}

}  // namespace px
