#pragma once
// Small hand-built vocabularies shared by the tokenizer tests.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace px::test_vocabs {

inline const std::string kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

struct Piece {
  std::string text;
  float score;
  TokenType type = TokenType::Normal;
};

// SentencePiece style: <unk>=0, <s>=1, </s>=2, then (optionally) the 256 byte tokens
// (<0xXX> = 3 + byte), then `pieces`. Adds BOS and a leading space, as Llama does.
inline Vocab make_spm_vocab(const std::vector<Piece>& pieces, bool byte_tokens = true) {
  Vocab v;
  v.kind = VocabKind::Spm;
  v.tokens = {{"<unk>", 0, TokenType::Unknown}, {"<s>", 0, TokenType::Control}, {"</s>", 0, TokenType::Control}};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.add_space_prefix = true;
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) v.tokens.push_back({fmt::format("<0x{:02X}>", b), 0, TokenType::Byte});
  }
  for (const Piece& p : pieces) v.tokens.push_back({p.text, p.score, p.type});
  return v;
}

// Byte-level BPE: token b (0..255) is the symbol of byte b; then one token per merge result
// (in merge order), then `extra` tokens.
inline Vocab make_bpe_vocab(const std::vector<std::string>& merges,
                            const std::vector<TokenInfo>& extra = {}, std::string pre = "gpt-2") {
  Vocab v;
  v.kind = VocabKind::Bpe;
  v.pre = std::move(pre);
  for (int b = 0; b < 256; ++b) v.tokens.push_back({unicode::byte_to_symbol(static_cast<uint8_t>(b))});
  for (const std::string& merge : merges) {
    const size_t space = merge.find(' ');
    std::string joined = merge.substr(0, space) + merge.substr(space + 1);
    const bool present = std::any_of(v.tokens.begin(), v.tokens.end(),
                                     [&](const TokenInfo& t) { return t.text == joined; });
    if (!present) v.tokens.push_back({joined});
  }
  for (const TokenInfo& token : extra) v.tokens.push_back(token);
  v.merges = merges;
  return v;
}

}  // namespace px::test_vocabs
