#pragma once
// Parser: tokens to syntax tree, with Jinja's precedence (ternary < or < and < not < comparisons
// < + - < ~ < * / // % < ** < unary minus, then filters `|` and tests `is` bound to the operand).
#include <memory>
#include <string>
#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace px::jinja {

// Nesting limits against hostile templates: deeper input is refused with an error instead of
// exhausting the stack while parsing, rendering or freeing the tree.
inline constexpr int kMaxParseDepth = 128;  // nested statements, parentheses, unary operators
inline constexpr int kMaxExprDepth = 256;   // height of one expression tree (long a+b+c+... chains)

// Throws TemplateError "<name> line L, column C: ..." for a template it cannot parse, including
// unknown filters, tests and tags.
std::unique_ptr<Program> parse_template(std::string_view source, const LexOptions& options, std::string name);

}  // namespace px::jinja
