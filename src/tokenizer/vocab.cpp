#include "tokenizer/vocab.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "core/error.h"

namespace px {

namespace {

// Token texts that end a turn in common chat models. They are marked end-of-generation and
// treated as control tokens even where the converter typed them otherwise (as llama.cpp does).
constexpr std::array<std::string_view, 11> kEndOfGenerationTexts = {
    "<|eot_id|>",    "<|im_end|>",      "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>",    "<|end_of_text|>", "<EOT>",   "_<EOT>",        "<end_of_utterance>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",  // DeepSeek
};

bool is_special_type(TokenType type) {
  return type == TokenType::Control || type == TokenType::UserDefined ||
         type == TokenType::Unknown;
}

void check_special_id(const Vocab& v, int32_t id, std::string_view what) {
  if (id != -1 && !v.valid_id(id)) {
    fail("{}: {} token id {} is outside the vocabulary (0..{})", v.source, what, id,
         v.n_tokens() - 1);
  }
}

}  // namespace

std::string Vocab::merge_key(std::string_view left, std::string_view right) {
  // 0xFF never occurs in UTF-8, so the key can not be produced by two other halves.
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left);
  key.push_back('\xFF');
  key.append(right);
  return key;
}

int32_t Vocab::find(std::string_view text) const {
  const auto it = token_to_id.find(text);
  return it == token_to_id.end() ? -1 : it->second;
}

int32_t Vocab::merge_rank(std::string_view left, std::string_view right) const {
  const auto it = merge_ranks.find(merge_key(left, right));
  return it == merge_ranks.end() ? -1 : it->second;
}

void Vocab::build_index() {
  if (tokens.empty()) fail("{}: the vocabulary has no tokens", source);
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    fail("{}: {} tokens is more than a 32-bit token id can address", source, tokens.size());
  }

  token_to_id.clear();
  token_to_id.reserve(tokens.size());
  for (int32_t id = 0; id < n_tokens(); ++id) {
    auto& token = tokens[static_cast<size_t>(id)];
    if (token.text.empty()) {
      // Some converted vocabularies carry empty placeholders; give them a unique text that
      // can not occur in input so they stay addressable by id (llama.cpp does the same).
      spdlog::warn("{}: token {} has an empty text; naming it [EMPTY_{}]", source, id, id);
      token.text = "[EMPTY_" + std::to_string(id) + "]";
    }
    const auto [it, inserted] = token_to_id.emplace(token.text, id);
    if (!inserted) {
      fail("{}: token text '{}' appears twice (ids {} and {})", source, token.text, it->second,
           id);
    }
  }

  check_special_id(*this, bos_id, "BOS");
  check_special_id(*this, eos_id, "EOS");
  check_special_id(*this, unk_id, "unknown");
  check_special_id(*this, pad_id, "padding");
  check_special_id(*this, eot_id, "EOT");
  check_special_id(*this, eom_id, "EOM");
  if (add_bos && bos_id == -1) fail("{}: add_bos_token is true but no BOS token id is set", source);
  if (add_eos && eos_id == -1) fail("{}: add_eos_token is true but no EOS token id is set", source);

  // End of generation: the declared ids plus the well-known end-of-turn texts.
  end_of_generation.clear();
  for (int32_t id : {eos_id, eot_id, eom_id}) {
    if (id != -1) end_of_generation.insert(id);
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    const int32_t id = find(text);
    if (id == -1) continue;
    end_of_generation.insert(id);
    if (tokens[static_cast<size_t>(id)].type != TokenType::Control) {
      spdlog::debug("{}: token {} '{}' ends generation; treating it as a control token", source,
                    id, text);
      tokens[static_cast<size_t>(id)].type = TokenType::Control;
    }
  }

  special_tokens.clear();
  for (int32_t id = 0; id < n_tokens(); ++id) {
    if (is_special_type(type_of(id))) special_tokens.push_back(id);
  }
  std::stable_sort(special_tokens.begin(), special_tokens.end(), [&](int32_t a, int32_t b) {
    return tokens[static_cast<size_t>(a)].text.size() > tokens[static_cast<size_t>(b)].text.size();
  });

  byte_tokens.fill(-1);
  if (kind == VocabKind::Spm) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
      byte_tokens[static_cast<size_t>(b)] = find(name);
    }
  }

  merge_ranks.clear();
  skipped_merges = 0;
  if (kind == VocabKind::Bpe) {
    merge_ranks.reserve(merges.size());
    std::string first_skipped;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string& merge = merges[rank];
      // Split at the first space after the first byte, so a left half can never be empty.
      const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
      bool usable = space != std::string::npos && space + 1 < merge.size();
      if (usable) {
        const std::string_view left(merge.data(), space);
        const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
        usable = find(left) != -1 && find(right) != -1 &&
                 find(std::string(left) + std::string(right)) != -1;
        if (usable) merge_ranks.emplace(merge_key(left, right), static_cast<int32_t>(rank));
      }
      if (!usable) {
        if (skipped_merges++ == 0) first_skipped = merge;
      }
    }
    if (skipped_merges > 0) {
      spdlog::warn(
          "{}: skipped {} of {} merges that are malformed or name tokens missing from the "
          "vocabulary (first: '{}')",
          source, skipped_merges, merges.size(), first_skipped);
    }
  }
  indexed = true;
}

}  // namespace px
