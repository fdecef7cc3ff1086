#include "tokenizer/special_tokens.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>

namespace px {

namespace {

struct Occurrence {
  int32_t priority;
  size_t begin;
  size_t end;
  int32_t id;
};

bool is_ascii_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Accepted matches, kept as begin -> end; answers whether a new span overlaps any of them.
class SpanSet {
 public:
  bool overlaps(size_t begin, size_t end) const {
    auto next = spans_.lower_bound(begin);
    if (next != spans_.end() && next->first < end) return true;
    if (next != spans_.begin() && std::prev(next)->second > begin) return true;
    return false;
  }
  void insert(size_t begin, size_t end) { spans_.emplace(begin, end); }
  const std::map<size_t, size_t>& spans() const { return spans_; }

 private:
  std::map<size_t, size_t> spans_;
};

}  // namespace

SpecialTokenMatcher::SpecialTokenMatcher(const Vocab& vocab) : vocab_(vocab), by_first_byte_(256) {
  for (size_t rank = 0; rank < vocab.special_tokens.size(); ++rank) {
    const int32_t id = vocab.special_tokens[rank];
    const TokenInfo& token = vocab.tokens[static_cast<size_t>(id)];
    const bool always = token.type == TokenType::UserDefined;
    has_user_defined_ = has_user_defined_ || always;
    by_first_byte_[static_cast<uint8_t>(token.text[0])].push_back(
        Candidate{static_cast<int32_t>(rank), id, always});
  }
}

std::vector<TextFragment> SpecialTokenMatcher::partition(std::string_view text,
                                                         bool parse_special) const {
  std::vector<TextFragment> fragments;
  if (text.empty()) return fragments;
  if (!parse_special && !has_user_defined_) {
    fragments.push_back(TextFragment{-1, text});
    return fragments;
  }

  // Every place where some eligible special token occurs.
  std::vector<Occurrence> found;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    for (const Candidate& candidate : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      if (!parse_special && !candidate.always) continue;
      const std::string& token_text = vocab_.tokens[static_cast<size_t>(candidate.id)].text;
      if (text.substr(pos, token_text.size()) == token_text) {
        found.push_back(Occurrence{candidate.priority, pos, pos + token_text.size(), candidate.id});
      }
    }
  }

  // Longest tokens first, each from left to right; an occurrence overlapping one already
  // taken stays text. This gives the same cuts as replacing token by token.
  std::sort(found.begin(), found.end(), [](const Occurrence& a, const Occurrence& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.begin < b.begin;
  });
  SpanSet taken;
  std::map<size_t, int32_t> token_at;  // begin -> id
  for (const Occurrence& occurrence : found) {
    if (taken.overlaps(occurrence.begin, occurrence.end)) continue;
    taken.insert(occurrence.begin, occurrence.end);
    token_at.emplace(occurrence.begin, occurrence.id);
  }

  size_t cursor = 0;
  bool strip_leading_space = false;  // the previous token asked for rstrip
  for (const auto& [begin, end] : taken.spans()) {
    const int32_t id = token_at.at(begin);
    const TokenInfo& token = vocab_.tokens[static_cast<size_t>(id)];
    size_t raw_begin = cursor;
    size_t raw_end = begin;
    if (strip_leading_space) {
      while (raw_begin < raw_end && is_ascii_space(text[raw_begin])) ++raw_begin;
    }
    if (token.lstrip) {
      while (raw_end > raw_begin && is_ascii_space(text[raw_end - 1])) --raw_end;
    }
    if (raw_end > raw_begin) fragments.push_back(TextFragment{-1, text.substr(raw_begin, raw_end - raw_begin)});
    fragments.push_back(TextFragment{id, {}});
    strip_leading_space = token.rstrip;
    cursor = end;
  }
  size_t raw_begin = cursor;
  if (strip_leading_space) {
    while (raw_begin < text.size() && is_ascii_space(text[raw_begin])) ++raw_begin;
  }
  if (raw_begin < text.size()) fragments.push_back(TextFragment{-1, text.substr(raw_begin)});
  return fragments;
}

}  // namespace px
