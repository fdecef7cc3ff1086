#pragma once
// Reading a Hugging Face tokenizer.json (+ optional tokenizer_config.json) into a Vocab.
//
// Supported: model.type "BPE" either byte-level (pre_tokenizer ByteLevel, alone or after Split
// regexes: GPT-2, Llama 3, Qwen) or SentencePiece-style (normalizer Prepend/Replace "▁" or
// pre_tokenizer Metaspace, usually with byte_fallback: Llama 2, Mistral). Other models
// (WordPiece, Unigram, WordLevel) are rejected with px::Error.
#include <string>
#include <string_view>

#include "tokenizer/vocab.h"

namespace px {

// `dir_or_file` is tokenizer.json itself or the folder holding it; tokenizer_config.json next
// to it is read when present. The Vocab is indexed (build_index() has run).
Vocab load_hf_vocab(const std::string& dir_or_file);

// The same from the files' texts; `config_json` may be empty (no tokenizer_config.json).
// `source` names the tokenizer file in error messages.
Vocab load_hf_vocab_text(std::string_view tokenizer_json, std::string_view config_json,
                         const std::string& source);

}  // namespace px
