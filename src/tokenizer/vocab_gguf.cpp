// Reading tokenizer.ggml.* from a GGUF file into a Vocab (and so into a Tokenizer).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace px {

namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

bool is_integer_type(GgufType type) {
  return gguf_type_is_unsigned(type) || gguf_type_is_signed(type);
}

// The value of `key` when it is an array whose elements pass `element_ok`; nullptr when absent.
template <typename Pred>
const GgufValue* find_array(const GgufFile& file, std::string_view key, std::string_view expected,
                            Pred element_ok) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return nullptr;
  if (!value->is_array()) {
    fail("{}: {} should be an array of {}, but is a single {}", file.name(), key, expected,
         gguf_type_name(value->type));
  }
  if (!element_ok(value->array_type)) {
    fail("{}: {} should be an array of {}, but holds {}", file.name(), key, expected,
         gguf_type_name(value->array_type));
  }
  return value;
}

const GgufValue* find_string_array(const GgufFile& file, std::string_view key) {
  return find_array(file, key, "strings", [](GgufType t) { return t == GgufType::STRING; });
}

void check_length(const GgufFile& file, std::string_view key, size_t length, size_t n_tokens) {
  if (length != n_tokens) {
    fail("{}: {} has {} entries but {} has {}; they must match one to one", file.name(), key,
         length, kTokensKey, n_tokens);
  }
}

// A token id from `key`, or `fallback` when absent. Out-of-range ids are errors, except for
// the padding id, which nothing here uses: some converters write the vocabulary size there.
int32_t read_token_id(const GgufFile& file, std::string_view key, int32_t fallback,
                      size_t n_tokens, bool tolerate_out_of_range = false) {
  const std::optional<int64_t> value = file.find_int(key);
  if (!value) return fallback;
  if (*value < 0 || static_cast<uint64_t>(*value) >= n_tokens) {
    if (tolerate_out_of_range) {
      spdlog::warn("{}: {} = {} is outside the vocabulary (0..{}); ignoring it", file.name(), key,
                   *value, n_tokens - 1);
      return -1;
    }
    fail("{}: {} = {} is outside the vocabulary (0..{})", file.name(), key, *value, n_tokens - 1);
  }
  return static_cast<int32_t>(*value);
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Phi-3's added tokens strip the whitespace after them (HF rstrip=True); GGUF does not record
// this, so recognise the model by name as llama.cpp does.
void apply_phi3_strip_rules(const GgufFile& file, Vocab& vocab) {
  const std::string name = lowercase(file.find_string("general.name").value_or(""));
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (TokenInfo& token : vocab.tokens) {
    const bool special = token.type == TokenType::Control || token.type == TokenType::UserDefined ||
                         token.type == TokenType::Unknown;
    if (special || token.text == "</s>") token.rstrip = true;
    if (token.text == "<unk>" || token.text == "<s>" || token.text == "<|endoftext|>") {
      token.rstrip = false;
    }
  }
}

}  // namespace

Vocab load_vocab(const GgufFile& file) {
  Vocab vocab;
  vocab.source = file.name();

  const std::string model = file.get_string(kModelKey);
  if (model == "llama") {
    vocab.kind = VocabKind::Spm;
  } else if (model == "gpt2") {
    vocab.kind = VocabKind::Bpe;
  } else {
    fail("{}: {} is '{}'; supported tokenizers are 'llama' (SentencePiece) and 'gpt2' "
         "(byte-level BPE)",
         file.name(), kModelKey, model);
  }

  const GgufValue* tokens = find_string_array(file, kTokensKey);
  if (tokens == nullptr) fail("{}: {} is missing; the file has no vocabulary", file.name(), kTokensKey);
  const size_t n_tokens = tokens->array_strings.size();
  if (n_tokens == 0) fail("{}: {} is empty", file.name(), kTokensKey);
  vocab.tokens.resize(n_tokens);
  for (size_t i = 0; i < n_tokens; ++i) vocab.tokens[i].text = tokens->array_strings[i];

  const GgufValue* scores = find_array(file, kScoresKey, "numbers", [](GgufType t) {
    return gguf_type_is_float(t) || is_integer_type(t);
  });
  if (scores != nullptr) {
    const bool floats = gguf_type_is_float(scores->array_type);
    check_length(file, kScoresKey, floats ? scores->array_floats.size() : scores->array_ints.size(),
                 n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) {
      vocab.tokens[i].score = floats ? static_cast<float>(scores->array_floats[i])
                                     : static_cast<float>(scores->array_ints[i]);
    }
  }

  const GgufValue* types = find_array(file, kTypesKey, "integers", is_integer_type);
  if (types != nullptr) {
    check_length(file, kTypesKey, types->array_ints.size(), n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) {
      const int64_t type = types->array_ints[i];
      if (type < 0 || type > static_cast<int64_t>(TokenType::Byte)) {
        fail("{}: {}[{}] = {} is not a token type (0..6: undefined, normal, unknown, control, "
             "user-defined, unused, byte)",
             file.name(), kTypesKey, i, type);
      }
      vocab.tokens[i].type = static_cast<TokenType>(type);
    }
  }

  if (vocab.kind == VocabKind::Bpe) {
    const GgufValue* merges = find_string_array(file, kMergesKey);
    if (merges == nullptr) fail("{}: {} is missing; a 'gpt2' tokenizer needs its merges", file.name(), kMergesKey);
    vocab.merges = merges->array_strings;
    const std::optional<std::string> pre = file.find_string(kPreKey);
    if (!pre || pre->empty()) {
      spdlog::warn("{}: {} is missing; using llama.cpp's 'default' pre-tokenizer", file.name(), kPreKey);
      vocab.pre = "default";
    } else {
      vocab.pre = *pre;
    }
  }

  const PreTokenizerTraits traits = PreTokenizer::traits(vocab.pre);
  const bool spm = vocab.kind == VocabKind::Spm;
  // SentencePiece vocabularies conventionally put <unk>, <s>, </s> at 0, 1, 2.
  auto spm_default = [&](int32_t id) { return spm && static_cast<size_t>(id) < n_tokens ? id : -1; };
  vocab.bos_id = read_token_id(file, "tokenizer.ggml.bos_token_id", spm_default(1), n_tokens);
  vocab.eos_id = read_token_id(file, "tokenizer.ggml.eos_token_id", spm_default(2), n_tokens);
  vocab.unk_id = read_token_id(file, "tokenizer.ggml.unknown_token_id", spm_default(0), n_tokens);
  vocab.pad_id = read_token_id(file, "tokenizer.ggml.padding_token_id", -1, n_tokens, true);
  vocab.eot_id = read_token_id(file, "tokenizer.ggml.eot_token_id", -1, n_tokens);
  vocab.eom_id = read_token_id(file, "tokenizer.ggml.eom_token_id", -1, n_tokens);

  // Without the key, SentencePiece and Llama-3-style vocabularies add BOS when they have one.
  const bool bos_by_default = (spm || traits.add_bos) && vocab.bos_id != -1;
  vocab.add_bos = file.find_bool("tokenizer.ggml.add_bos_token").value_or(bos_by_default);
  vocab.add_eos = file.find_bool("tokenizer.ggml.add_eos_token").value_or(false);
  vocab.add_space_prefix = file.find_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  vocab.ignore_merges = !spm && traits.ignore_merges;
  vocab.chat_template = file.find_string("tokenizer.chat_template");

  apply_phi3_strip_rules(file, vocab);
  vocab.build_index();
  return vocab;
}

std::shared_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  return from_vocab(load_vocab(file));
}

void write_vocab_gguf(const Vocab& vocab, GgufWriter& w) {
  w.set_string(std::string(kModelKey), vocab.kind == VocabKind::Spm ? "llama" : "gpt2");
  if (vocab.kind == VocabKind::Bpe) w.set_string(std::string(kPreKey), vocab.pre);
  std::vector<std::string> texts;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const TokenInfo& t : vocab.tokens) {
    texts.push_back(t.text);
    scores.push_back(t.score);
    types.push_back(static_cast<int32_t>(t.type));
  }
  w.set_strings(std::string(kTokensKey), texts);
  if (vocab.kind == VocabKind::Spm) w.set_float32s(std::string(kScoresKey), scores);
  w.set_int32s(std::string(kTypesKey), types);
  if (!vocab.merges.empty()) w.set_strings(std::string(kMergesKey), vocab.merges);
  auto set_id = [&](const char* key, int32_t id) {
    if (id >= 0) w.set_uint32(key, static_cast<uint32_t>(id));
  };
  set_id("tokenizer.ggml.bos_token_id", vocab.bos_id);
  set_id("tokenizer.ggml.eos_token_id", vocab.eos_id);
  set_id("tokenizer.ggml.unknown_token_id", vocab.unk_id);
  set_id("tokenizer.ggml.padding_token_id", vocab.pad_id);
  set_id("tokenizer.ggml.eot_token_id", vocab.eot_id);
  set_id("tokenizer.ggml.eom_token_id", vocab.eom_id);
  w.set_bool("tokenizer.ggml.add_bos_token", vocab.add_bos);
  w.set_bool("tokenizer.ggml.add_eos_token", vocab.add_eos);
  if (vocab.kind == VocabKind::Spm) w.set_bool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
  if (vocab.chat_template) w.set_string("tokenizer.chat_template", *vocab.chat_template);
}

}  // namespace px
