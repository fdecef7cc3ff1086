#pragma once
// Tokenizer for the Jinja subset. Whitespace control is resolved here, as Jinja does: `{%-`/`-%}`
// (and the same on `{{ }}` and `{# #}`) strip whitespace, `lstrip_blocks` removes the spaces and
// tabs before a block or comment tag that starts a line, `trim_blocks` drops the newline after one,
// and `{%+`/`+%}` turn those two off for one tag. Raw blocks become text; comments vanish.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace px::jinja {

enum class TokenType { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  TokenType type = TokenType::Eof;
  std::string text;  // Text and String: the content (escapes resolved); Name, Op: as written
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
  int column = 1;
};

struct LexOptions {
  bool trim_blocks = true;  // Hugging Face renders chat templates with both on
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws px::Error "<name> line L, column C: ..." on malformed input (unclosed tags, strings or
// comments, stray characters, unbalanced brackets).
std::vector<Token> tokenize(std::string_view source, const LexOptions& options, std::string_view name);

// The error-message prefix used throughout: "<name> line L, column C: ".
std::string location_prefix(std::string_view name, int line, int column);

}  // namespace px::jinja
