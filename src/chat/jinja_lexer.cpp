#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "chat/jinja_error.h"
#include "chat/jinja_text.h"

namespace px::jinja {

std::string location_prefix(std::string_view name, int line, int column) {
  return fmt::format("{} line {}, column {}: ", name, line, column);
}

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Jinja reads the template with every line ending as "\n" and, unless told to keep it, without
// the final newline.
std::string normalize_newlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options, std::string_view name)
      : src_(std::move(source)), opt_(options), name_(name) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, (tag == std::string::npos ? src_.size() : tag) - pos);
      if (tag == std::string::npos) {
        push_text(std::move(text), pos);
        break;
      }
      const char kind = src_[tag + 1];
      size_t p = tag + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      if (sign == '-') {
        text.erase(text.size() - strip_right_length(text));
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        lstrip_before_tag(text, pos);
      }
      push_text(std::move(text), pos);

      if (kind == '#') {
        pos = skip_comment(tag, p);
      } else if (kind == '%' && is_raw_begin(p)) {
        pos = lex_raw(tag, p);
      } else {
        pos = lex_tag(tag, kind, p);
      }
    }
    Token eof;
    eof.type = TokenType::Eof;
    locate(eof, src_.size());
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(size_t offset, const std::string& message) const {
    Token t;
    locate(t, offset);
    throw TemplateError(location_prefix(name_, t.line, t.column) + message);
  }

  void locate(Token& t, size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    t.line = static_cast<int>(line_index + 1);
    t.column = static_cast<int>(offset - line_starts_[line_index] + 1);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  static size_t strip_right_length(std::string_view text) {
    size_t n = 0;
    while (n < text.size() && text::is_space(text[text.size() - 1 - n])) ++n;
    return n;
  }

  // lstrip_blocks: drop the spaces and tabs between the start of the line and the tag, when
  // nothing else stands there. `text_start` tells whether the text itself starts a line.
  void lstrip_before_tag(std::string& text, size_t text_start) const {
    const size_t nl = text.rfind('\n');
    const size_t line_begin = nl == std::string::npos ? 0 : nl + 1;
    const bool line_starting = text_start == 0 || src_[text_start - 1] == '\n';
    if (nl == std::string::npos && !line_starting) return;
    for (size_t i = line_begin; i < text.size(); ++i) {
      if (!text::is_space(text[i])) return;
    }
    text.erase(line_begin);
  }

  void push_text(std::string text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::Text;
    t.text = std::move(text);
    locate(t, offset);
    tokens_.push_back(std::move(t));
  }

  void push(TokenType type, std::string text, size_t offset) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    locate(t, offset);
    tokens_.push_back(std::move(t));
  }

  // After a block or comment tag closes at `end`: `-` strips all following whitespace,
  // trim_blocks (unless `+`) drops one newline.
  size_t after_block_end(size_t end, char sign) const {
    if (sign == '-') {
      while (end < src_.size() && text::is_space(src_[end])) ++end;
    } else if (sign != '+' && opt_.trim_blocks && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t skip_comment(size_t tag, size_t p) const {
    const size_t close = src_.find("#}", p);
    if (close == std::string::npos) error(tag, "comment is not closed (missing '#}')");
    char sign = 0;
    if (close > p && (src_[close - 1] == '-' || src_[close - 1] == '+')) sign = src_[close - 1];
    return after_block_end(close + 2, sign);
  }

  size_t skip_spaces(size_t p) const {
    while (p < src_.size() && text::is_space(src_[p])) ++p;
    return p;
  }

  // Matches `<ws> word <ws> [-+]? %}` at p; returns the offset after "%}" or npos, and the sign.
  size_t match_word_tag_end(size_t p, std::string_view word, char& sign) const {
    p = skip_spaces(p);
    if (src_.compare(p, word.size(), word) != 0) return std::string::npos;
    p += word.size();
    if (p < src_.size() && is_name_char(src_[p])) return std::string::npos;
    p = skip_spaces(p);
    sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) return std::string::npos;
    return p + 2;
  }

  bool is_raw_begin(size_t p) const {
    char sign = 0;
    return match_word_tag_end(p, "raw", sign) != std::string::npos;
  }

  size_t lex_raw(size_t tag, size_t p) {
    char sign = 0;
    size_t body = match_word_tag_end(p, "raw", sign);
    if (sign == '-') body = skip_spaces(body);  // Jinja keeps the newline after {% raw %}
    for (size_t at = src_.find("{%", body); at != std::string::npos; at = src_.find("{%", at + 2)) {
      size_t q = at + 2;
      char open_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) open_sign = src_[q++];
      char close_sign = 0;
      const size_t end = match_word_tag_end(q, "endraw", close_sign);
      if (end == std::string::npos) continue;
      std::string text = src_.substr(body, at - body);
      if (open_sign == '-') {
        text.erase(text.size() - strip_right_length(text));
      } else if (open_sign != '+' && opt_.lstrip_blocks) {
        lstrip_before_tag(text, body);
      }
      push_text(std::move(text), body);
      return after_block_end(end, close_sign);
    }
    error(tag, "raw block is not closed (missing '{% endraw %}')");
  }

  size_t lex_tag(size_t tag, char kind, size_t p) {
    push(kind == '%' ? TokenType::BlockBegin : TokenType::VarBegin, kind == '%' ? "{%" : "{{", tag);
    const std::string_view close = kind == '%' ? "%}" : "}}";
    std::vector<char> brackets;  // a `}}` inside a dict literal closes the dict, not the tag
    while (true) {
      p = skip_spaces(p);
      if (p >= src_.size()) {
        error(tag, fmt::format("tag is not closed (missing '{}')", close));
      }
      if (brackets.empty()) {
        char sign = 0;
        size_t q = p;
        if (src_[q] == '-' || src_[q] == '+') sign = src_[q++];
        if (src_.compare(q, 2, close) == 0 && (sign != '+' || kind == '%')) {
          push(kind == '%' ? TokenType::BlockEnd : TokenType::VarEnd, std::string(close), p);
          if (kind == '%') return after_block_end(q + 2, sign);
          return sign == '-' ? skip_spaces(q + 2) : q + 2;
        }
      }
      const char c = src_[p];
      if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && is_name_char(src_[e])) ++e;
        push(TokenType::Name, src_.substr(p, e - p), p);
        p = e;
      } else if (is_digit(c)) {
        p = lex_number(p);
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, brackets);
      }
    }
  }

  size_t scan_digits(size_t p) const {
    while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1])))) {
      ++p;
    }
    return p;
  }

  size_t lex_number(size_t start) {
    size_t p = scan_digits(start);
    bool is_float = false;
    if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      is_float = true;
      p = scan_digits(p + 1);
    }
    if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        is_float = true;
        p = scan_digits(q);
      }
    }
    std::string digits;
    for (size_t i = start; i < p; ++i) {
      if (src_[i] != '_') digits += src_[i];
    }
    Token t;
    locate(t, start);
    t.text = src_.substr(start, p - start);
    if (is_float) {
      t.type = TokenType::Float;
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      t.type = TokenType::Int;
      errno = 0;
      const unsigned long long v = std::strtoull(digits.c_str(), nullptr, 10);
      if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
        error(start, "integer literal " + t.text + " does not fit in 64 bits");
      }
      t.int_value = static_cast<int64_t>(v);
    }
    tokens_.push_back(std::move(t));
    return p;
  }

  // Escapes as Python's "unicode-escape" reads them; an unknown escape keeps its backslash.
  size_t lex_string(size_t start) {
    const char quote = src_[start];
    std::string out;
    size_t p = start + 1;
    while (true) {
      if (p >= src_.size()) error(start, "string literal is not closed");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) error(start, "string literal is not closed");
      const char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'a':
          out += '\a';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;  // backslash-newline continues the line
        case 'x':
        case 'u':
        case 'U': {
          const size_t len = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          uint32_t cp = 0;
          for (size_t k = 0; k < len; ++k) {
            const int h = p + k < src_.size() ? hex_value(src_[p + k]) : -1;
            if (h < 0) error(p - 2, fmt::format("truncated \\{} escape in string literal", e));
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10FFFF) error(p - 2, "escape \\U names no Unicode code point");
          text::append_utf8(out, cp);
          p += len;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[p++] - '0');
            }
            text::append_utf8(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    Token t;
    t.type = TokenType::String;
    t.text = std::move(out);
    locate(t, start);
    tokens_.push_back(std::move(t));
    return p + 1;
  }

  size_t lex_operator(size_t p, std::vector<char>& brackets) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (src_.compare(p, 2, op) == 0) {
        push(TokenType::Op, std::string(op), p);
        return p + 2;
      }
    }
    const char c = src_[p];
    static constexpr std::string_view kOne = "+-*/%~[](){}<>=.:|,;";
    if (kOne.find(c) == std::string_view::npos) {
      error(p, fmt::format("unexpected character '{}'", c));
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error(p, fmt::format("unexpected '{}'", c));
      if (brackets.back() != c) error(p, fmt::format("unexpected '{}', expected '{}'", c, brackets.back()));
      brackets.pop_back();
    }
    push(TokenType::Op, std::string(1, c), p);
    return p + 1;
  }

  std::string src_;
  LexOptions opt_;
  std::string name_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options, std::string_view name) {
  return Lexer(normalize_newlines(source, options.keep_trailing_newline), options, name).run();
}

}  // namespace px::jinja
