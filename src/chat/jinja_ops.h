#pragma once
// Operators with Python semantics: int arithmetic stays int (overflow is an error, Python would
// grow the integer), `/` gives a float, `//` and `%` floor, `~` joins the str() of both sides,
// `in` tests substrings, list items and dict keys.
#include "chat/jinja_ast.h"

namespace px::jinja {

class RenderState;

Value unary_op(Op op, const Value& v);
Value binary_op(RenderState& state, Op op, const Value& a, const Value& b);
bool compare_op(Op op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
// Python's "%s, %d" % args: a tuple gives several arguments, a dict named ones (%(key)s).
std::string percent_format(RenderState& state, std::string_view format, const Value& args);
// Python slicing of lists and strings (by code point); bounds may be undefined or none.
Value slice(RenderState& state, const Value& target, const Value& start, const Value& stop, const Value& step);

}  // namespace px::jinja
