#pragma once
// Unicode normalization (through ICU) for tokenizers whose tokenizer.json asks for it: Qwen's
// NFC turns "e" + U+0301 into "é" before the vocabulary sees the text.
#include <string>
#include <string_view>

namespace px {

// The NFC form of valid UTF-8 text; text that is not valid UTF-8 comes back unchanged (the
// encoder then treats its bytes as it always does).
std::string to_nfc(std::string_view utf8);

}  // namespace px
