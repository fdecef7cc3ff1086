// The one Tokenizer implementation: a validated Vocab plus the encoder its kind asks for.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_normalize.h"

#include <memory>

#include "core/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace px {

namespace {

constexpr std::string_view kEscapedSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  for (char c : text) {
    if (c == ' ') {
      out += kEscapedSpace;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string unescape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (text.substr(pos, kEscapedSpace.size()) == kEscapedSpace) {
      out.push_back(' ');
      pos += kEscapedSpace.size();
    } else {
      out.push_back(text[pos++]);
    }
  }
  return out;
}

// "<0xAB>" -> 0xAB, or -1 when `text` is not a byte token name.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int high = hex(text[3]);
  const int low = hex(text[4]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

// Byte-level symbols back to bytes; characters outside the 256 symbols (tokens some
// converters store as plain UTF-8) are kept as they are.
std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    uint32_t cp = 0;
    if (unicode::decode_one(text, pos, cp)) {
      const int byte = unicode::symbol_to_byte(cp);
      if (byte >= 0) {
        out.push_back(static_cast<char>(byte));
      } else {
        out.append(text.substr(start, pos - start));
      }
    } else {
      out.push_back(text[pos++]);
    }
  }
  return out;
}

class VocabTokenizer final : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
    if (!vocab_.indexed) vocab_.build_index();
    matcher_ = std::make_unique<SpecialTokenMatcher>(vocab_);
    if (vocab_.kind == VocabKind::Bpe) {
      pre_tokenizer_ = vocab_.pre_patterns.empty()
                           ? std::make_unique<PreTokenizer>(vocab_.pre)
                           : std::make_unique<PreTokenizer>(
                                 PreTokenizerTraits{vocab_.pre, vocab_.ignore_merges, vocab_.add_bos},
                                 vocab_.pre_patterns);
    }
    pieces_.reserve(vocab_.tokens.size());
    for (int32_t id = 0; id < vocab_.n_tokens(); ++id) pieces_.push_back(make_piece(id));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special && vocab_.add_bos) out.push_back(vocab_.bos_id);
    // SentencePiece puts a space in front of the text and of text that follows a special
    // token, as llama.cpp does.
    bool after_special = true;
    for (const TextFragment& fragment : matcher_->partition(text, parse_special)) {
      if (fragment.token >= 0) {
        out.push_back(fragment.token);
        after_special = true;
        continue;
      }
      // HF normalizes the text between special tokens, not the special tokens themselves.
      const std::string normalized = vocab_.normalize_nfc ? to_nfc(fragment.text) : std::string();
      const std::string_view piece = vocab_.normalize_nfc ? std::string_view(normalized) : fragment.text;
      if (vocab_.kind == VocabKind::Spm) {
        std::string prefixed;
        if (vocab_.add_space_prefix && after_special) prefixed.push_back(' ');
        prefixed.append(piece);
        spm_encode(vocab_, escape_spaces(prefixed), out);
      } else {
        encode_bpe(piece, out);
      }
      after_special = false;
    }
    if (add_special && vocab_.add_eos) out.push_back(vocab_.eos_id);
    return out;
  }

  std::string token_piece(int32_t id) const override { return pieces_[checked(id)]; }

  int32_t n_vocab() const override { return vocab_.n_tokens(); }
  int32_t bos_id() const override { return vocab_.bos_id; }
  int32_t eos_id() const override { return vocab_.eos_id; }
  int32_t unk_id() const override { return vocab_.unk_id; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool add_eos() const override { return vocab_.add_eos; }
  bool adds_space_prefix() const override {
    return vocab_.kind == VocabKind::Spm && vocab_.add_space_prefix;
  }

  bool is_special(int32_t id) const override {
    const TokenType type = vocab_.type_of(static_cast<int32_t>(checked(id)));
    return type == TokenType::Control || type == TokenType::Unknown;
  }
  bool is_end_of_generation(int32_t id) const override {
    return vocab_.end_of_generation.count(id) > 0;
  }
  std::optional<std::string> chat_template() const override { return vocab_.chat_template; }
  const std::string& token_text(int32_t id) const override {
    return vocab_.tokens[checked(id)].text;
  }
  int32_t find_token(std::string_view text) const override { return vocab_.find(text); }
  std::string_view model() const override {
    return vocab_.kind == VocabKind::Spm ? "llama" : "gpt2";
  }

 private:
  size_t checked(int32_t id) const {
    if (!vocab_.valid_id(id)) {
      fail("{}: token id {} is outside the vocabulary (0..{})", vocab_.source, id,
           vocab_.n_tokens() - 1);
    }
    return static_cast<size_t>(id);
  }

  void encode_bpe(std::string_view raw, std::vector<int32_t>& out) const {
    // Invalid UTF-8 bytes become U+FFFD first, as llama.cpp does before pre-tokenizing.
    const std::string text = unicode::sanitize(raw);
    const bool ignore_merges = vocab_.ignore_merges;
    for (std::string_view word : pre_tokenizer_->split(text)) {
      bpe_encode_word(vocab_, unicode::bytes_to_symbols(word), ignore_merges, out);
    }
  }

  std::string make_piece(int32_t id) const {
    const TokenInfo& token = vocab_.tokens[static_cast<size_t>(id)];
    switch (token.type) {
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::UserDefined:
        return token.text;
      case TokenType::Byte: {
        const int byte = parse_byte_token(token.text);
        if (byte >= 0) return std::string(1, static_cast<char>(byte));
        break;  // a byte-typed token with another name decodes like a normal one
      }
      default:
        break;
    }
    return vocab_.kind == VocabKind::Spm ? unescape_spaces(token.text)
                                         : byte_level_decode(token.text);
  }

  Vocab vocab_;
  std::unique_ptr<SpecialTokenMatcher> matcher_;   // refers to vocab_
  std::unique_ptr<PreTokenizer> pre_tokenizer_;    // BPE only
  std::vector<std::string> pieces_;                // token_piece of every id
};

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  return std::make_shared<VocabTokenizer>(std::move(vocab));
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string text;
  bool first = true;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    std::string piece = token_piece(id);
    if (first && adds_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    first = false;
    text += piece;
  }
  return unicode::sanitize(text);
}

}  // namespace px
