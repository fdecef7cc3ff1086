#pragma once
// The vocabulary a synthetic model gets when no --vocab file is given: a small byte-level BPE
// in GPT-2's conventions (tokenizer.ggml.model "gpt2", pre "default"), so every string can be
// tokenized and detokenized exactly, plus ChatML control tokens and a ChatML chat template.
#include <cstdint>
#include <string>
#include <vector>

namespace px {

class GgufWriter;

// GGUF token_type values (llama.cpp's llama_token_type).
constexpr int32_t kTokenTypeNormal = 1;
constexpr int32_t kTokenTypeControl = 3;

struct BuiltinVocab {
  std::vector<std::string> tokens;  // id -> text, bytes shown through bytes_to_unicode
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // "left right", in priority order
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t eot_id = -1;  // <|im_end|>: ends an assistant turn
  std::string chat_template;
};

// Token ids 0..255 are the single bytes 0..255; merges follow; control tokens come last.
// Merges are learned by plain BPE from a fixed English text, so the result never changes.
const BuiltinVocab& builtin_vocab();

// GPT-2's bytes_to_unicode: the UTF-8 text of the printable code point standing for byte b.
std::string byte_to_unicode(uint8_t b);

// Writes every tokenizer.* key of the built-in vocabulary; returns the token count.
size_t write_builtin_vocab(GgufWriter& writer);

}  // namespace px
