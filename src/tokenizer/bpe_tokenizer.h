#pragma once
// Byte-level BPE merging (tokenizer.ggml.model = "gpt2"): a pre-tokenized word, already mapped
// to GPT-2's byte symbols, starts as single symbols; the adjacent pair with the lowest merge
// rank is merged until no pair has a merge.
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace px {

// Appends the tokens of one byte-level word to `out`. With ignore_merges a word that is a
// token as a whole is emitted directly (Llama 3).
void bpe_encode_word(const Vocab& vocab, std::string_view word, bool ignore_merges,
                     std::vector<int32_t>& out);

}  // namespace px
