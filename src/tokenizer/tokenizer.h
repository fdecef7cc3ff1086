#pragma once
// Tokenizers built from GGUF metadata (tokenizer.ggml.*): SentencePiece-style ("llama")
// and byte-level BPE ("gpt2") with the pre-tokenizer named by tokenizer.ggml.pre.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px {

class GgufFile;

class Tokenizer {
 public:
  static std::shared_ptr<Tokenizer> from_gguf(const GgufFile& file);
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS when the vocabulary asks for it (tokenizer.ggml.add_bos_token).
  // parse_special: text such as "<|eot_id|>" becomes the special token instead of plain text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // The bytes a token stands for (byte tokens give their byte; SPM's U+2581 gives a space).
  virtual std::string token_piece(int32_t id) const = 0;
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;
  virtual bool add_bos() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual bool is_end_of_generation(int32_t id) const = 0;
  virtual std::optional<std::string> chat_template() const = 0;
};

// Turns a stream of token ids into text pieces, never splitting a UTF-8 character: bytes of
// an incomplete character are held until it completes (or flush() at the end).
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace px
