#include "tokenizer/spm_tokenizer.h"

#include "core/error.h"
#include "tokenizer/symbol_merge.h"

namespace px {

namespace {

// A merged symbol is always a token; a single character may not be, and then its bytes go
// out as byte tokens, or the whole character as the unknown token.
void emit_piece(const Vocab& vocab, std::string_view piece, std::vector<int32_t>& out) {
  const int32_t id = vocab.find(piece);
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  const size_t mark = out.size();
  for (char c : piece) {
    const int32_t byte_id = vocab.byte_tokens[static_cast<uint8_t>(c)];
    if (byte_id < 0) {
      out.resize(mark);
      if (vocab.unk_id < 0) {
        fail("{}: can not encode byte 0x{:02X}: the vocabulary has neither <0x{:02X}> nor an "
             "unknown token",
             vocab.source, static_cast<uint8_t>(c), static_cast<uint8_t>(c));
      }
      out.push_back(vocab.unk_id);
      return;
    }
    out.push_back(byte_id);
  }
}

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  merge_symbols<float>(
      text,
      [&](std::string_view left, std::string_view right, float& priority) {
        // Adjacent in `text`, so the joined piece is one view.
        const int32_t id = vocab.find(std::string_view(left.data(), left.size() + right.size()));
        if (id < 0) return false;
        priority = vocab.tokens[static_cast<size_t>(id)].score;  // the highest score merges first
        return true;
      },
      [&](std::string_view piece) { emit_piece(vocab, piece, out); });
}

}  // namespace px
