#include "model/builtin_vocab.h"

#include <cctype>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "model/gguf_writer.h"

namespace px {
namespace {

// Text the merges are learned from: plain English so common words become single tokens.
constexpr std::string_view kMergeCorpus =
    "The quick brown fox jumps over the lazy dog. There is a house in the middle of the town, "
    "and the people who live there like to walk in the park when the weather is good. "
    "They often talk about the things that they have seen and the places that they want to "
    "visit. In the morning the sun comes up over the hills and the birds begin to sing. "
    "A model is a program that can learn from data and then answer questions about the world. "
    "When you ask a question, the model reads the words one at a time and writes an answer. "
    "This is the first time that we have been able to run such a model on a small computer. "
    "What would you like to know? I think that the answer is in the question itself. "
    "We are going to make something new with the time we have, and it will be very good. "
    "Hello, how are you today? I am fine, thank you for asking. It is a nice day, is it not? "
    "The number of people in the world is growing, and there are more and more of them every "
    "year. Some of them live in cities, and some of them live in the country. "
    "She said that he would come back after the meeting, but he did not come back at all. "
    "Every story has a beginning, a middle and an end, and this one is no different from the "
    "others that you have read before. Would you like another one? Yes, please tell me more.";

constexpr int kMaxMerges = 400;

// Code point standing for byte b in GPT-2's byte-level vocabularies: printable Latin-1
// bytes stand for themselves, the others are moved to 256 + n in byte order.
uint32_t byte_code_point(uint8_t b) {
  auto printable = [](int c) {
    return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
  };
  if (printable(b)) return b;
  uint32_t n = 0;
  for (int c = 0; c < b; ++c) {
    if (!printable(c)) ++n;
  }
  return 256 + n;
}

std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {  // the mapping never exceeds 0x143
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

using Word = std::vector<std::string>;  // symbols, each a token text

// Splits the corpus like the GPT-2 pattern " ?\p{L}+" (letters with an optional leading
// space); merges are learned only inside such chunks so they agree with the pre-tokenizer.
std::map<Word, int> corpus_words() {
  std::map<Word, int> words;
  size_t i = 0;
  while (i < kMergeCorpus.size()) {
    size_t start = i;
    if (kMergeCorpus[i] == ' ') ++i;
    size_t letters = i;
    while (i < kMergeCorpus.size() && std::isalpha(static_cast<unsigned char>(kMergeCorpus[i]))) {
      ++i;
    }
    if (i == letters) {  // not a word: skip one character
      i = start + 1;
      continue;
    }
    Word word;
    for (size_t k = start; k < i; ++k) word.push_back(byte_to_unicode(uint8_t(kMergeCorpus[k])));
    ++words[word];
  }
  return words;
}

// Plain BPE: repeatedly merge the most frequent adjacent pair (ties: the smallest pair).
std::vector<std::pair<std::string, std::string>> learn_merges() {
  std::map<Word, int> words = corpus_words();
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int>(merges.size()) < kMaxMerges) {
    std::map<std::pair<std::string, std::string>, int> pair_counts;
    for (const auto& [word, count] : words) {
      for (size_t k = 0; k + 1 < word.size(); ++k) pair_counts[{word[k], word[k + 1]}] += count;
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int best_count = 1;  // a pair seen once is not worth a token
    for (const auto& [pair, count] : pair_counts) {
      if (count > best_count) {
        best = &pair;
        best_count = count;
      }
    }
    if (!best) break;
    const auto merge = *best;
    merges.push_back(merge);
    std::map<Word, int> merged;
    for (const auto& [word, count] : words) {
      Word out;
      for (size_t k = 0; k < word.size(); ++k) {
        if (k + 1 < word.size() && word[k] == merge.first && word[k + 1] == merge.second) {
          out.push_back(merge.first + merge.second);
          ++k;
        } else {
          out.push_back(word[k]);
        }
      }
      merged[out] += count;
    }
    words = std::move(merged);
  }
  return merges;
}

BuiltinVocab build_vocab() {
  BuiltinVocab v;
  std::set<std::string> known;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(byte_to_unicode(uint8_t(b)));
    v.token_types.push_back(kTokenTypeNormal);
    known.insert(v.tokens.back());
  }
  for (const auto& [left, right] : learn_merges()) {
    v.merges.push_back(left + " " + right);
    // Different merge paths can build the same text; it is one token.
    if (known.insert(left + right).second) {
      v.tokens.push_back(left + right);
      v.token_types.push_back(kTokenTypeNormal);
    }
  }
  auto add_control = [&](const char* text) {
    v.tokens.emplace_back(text);
    v.token_types.push_back(kTokenTypeControl);
    return static_cast<int32_t>(v.tokens.size() - 1);
  };
  v.bos_id = add_control("<|bos|>");
  v.eos_id = add_control("<|eos|>");
  add_control("<|im_start|>");
  v.eot_id = add_control("<|im_end|>");
  v.chat_template =
      "{% for message in messages %}"
      "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
      "{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  return v;
}

}  // namespace

std::string byte_to_unicode(uint8_t b) { return utf8(byte_code_point(b)); }

const BuiltinVocab& builtin_vocab() {
  static const BuiltinVocab vocab = build_vocab();
  return vocab;
}

size_t write_builtin_vocab(GgufWriter& writer) {
  const BuiltinVocab& v = builtin_vocab();
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "default");
  writer.set_strings("tokenizer.ggml.tokens", v.tokens);
  writer.set_int32s("tokenizer.ggml.token_type", v.token_types);
  writer.set_strings("tokenizer.ggml.merges", v.merges);
  writer.set_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  writer.set_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  writer.set_uint32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(v.eot_id));
  writer.set_bool("tokenizer.ggml.add_bos_token", true);
  writer.set_bool("tokenizer.ggml.add_eos_token", false);
  writer.set_string("tokenizer.chat_template", v.chat_template);
  return v.tokens.size();
}

}  // namespace px
