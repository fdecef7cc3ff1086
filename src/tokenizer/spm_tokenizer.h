#pragma once
// SentencePiece-style encoding (tokenizer.ggml.model = "llama"): start from single UTF-8
// characters and keep merging the adjacent pair whose concatenation is the vocabulary token
// with the highest score. Characters that end up in no token fall back to <0xXX> byte tokens
// (or the unknown token).
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace px {

// Appends the tokens of `text`, whose spaces are already U+2581, to `out`.
void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace px
