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
struct Vocab;

class Tokenizer {
 public:
  // Throws px::Error for tokenizer models other than "llama" and "gpt2" and for malformed
  // tokenizer.ggml.* metadata.
  static std::shared_ptr<Tokenizer> from_gguf(const GgufFile& file);
  // From a Hugging Face tokenizer.json (a file, or a folder holding tokenizer.json and
  // optionally tokenizer_config.json); see tokenizer/vocab_hf.h. Throws px::Error for
  // unsupported or malformed files.
  static std::shared_ptr<Tokenizer> from_hf(const std::string& dir_or_file);
  // From a vocabulary built by hand (tests) or loaded elsewhere; validates it.
  static std::shared_ptr<Tokenizer> from_vocab(Vocab vocab);
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS / append EOS when the vocabulary asks for it
  // (tokenizer.ggml.add_bos_token / add_eos_token).
  // parse_special: text such as "<|eot_id|>" becomes the control token instead of plain text.
  // User-defined tokens (type 4) are matched either way, as HF tokenizers and llama.cpp do.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // The bytes a token stands for (byte tokens give their byte; SPM's U+2581 gives a space;
  // control tokens give their text). Throws px::Error for an id outside the vocabulary.
  virtual std::string token_piece(int32_t id) const = 0;
  // The text of `ids`: skip_special drops control and unknown-type tokens (is_special); the
  // space add_space_prefix put in front of the first token is removed; bytes that do not form
  // valid UTF-8 become U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;
  virtual bool add_bos() const = 0;
  // Control and unknown-type tokens: the ones decode(skip_special) leaves out.
  virtual bool is_special(int32_t id) const = 0;
  virtual bool is_end_of_generation(int32_t id) const = 0;
  virtual std::optional<std::string> chat_template() const = 0;

  // Additions beyond the first draft of this interface.
  virtual int32_t unk_id() const = 0;  // -1 when none
  virtual bool add_eos() const = 0;
  // SPM with add_space_prefix: encode puts a space in front, decode takes it off again.
  virtual bool adds_space_prefix() const = 0;
  // The token's text exactly as stored in the vocabulary (e.g. "\xe2\x96\x81Hello", "<s>").
  virtual const std::string& token_text(int32_t id) const = 0;
  // The id of the token whose stored text is `text`, or -1.
  virtual int32_t find_token(std::string_view text) const = 0;
  // "llama" (SentencePiece) or "gpt2" (byte-level BPE), as in tokenizer.ggml.model.
  virtual std::string_view model() const = 0;
};

// Turns a stream of token ids into text pieces, never splitting a UTF-8 character: bytes of
// an incomplete character are held until it completes (or flush() at the end). Everything
// pushed and flushed concatenates to decode() of the same ids.
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
