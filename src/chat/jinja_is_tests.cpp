// Tests: the `x is name(args)` predicates, also used by select/reject/selectattr/rejectattr.
#include <algorithm>
#include <cmath>
#include <utility>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_ops.h"
#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

const Value& one_arg(const CallArgs& args, std::string_view test) {
  if (args.positional.size() != 1 || !args.named.empty()) fault("test '{}' takes one argument", test);
  return args.positional[0];
}

void no_args(const CallArgs& args, std::string_view test) {
  if (!args.positional.empty() || !args.named.empty()) fault("test '{}' takes no arguments", test);
}

int64_t integer_operand(const Value& v, std::string_view test) {
  if (!v.is_int() && !v.is_bool()) fault("test '{}' needs an integer, got {}", test, v.type_name());
  return v.as_int();
}

bool t_defined(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "defined");
  return !v.is_undefined();
}
bool t_undefined(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "undefined");
  return v.is_undefined();
}
bool t_none(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "none");
  return v.is_none();
}
bool t_boolean(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "boolean");
  return v.is_bool();
}
bool t_true(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "true");
  return v.is_bool() && v.as_bool();
}
bool t_false(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "false");
  return v.is_bool() && !v.as_bool();
}
bool t_integer(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "integer");
  return v.is_int();
}
bool t_float(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "float");
  return v.is_float();
}
bool t_number(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "number");
  return v.is_number();
}
bool t_string(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "string");
  return v.is_string();
}
bool t_mapping(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "mapping");
  return v.is_dict();
}
bool t_callable(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "callable");
  return v.is_callable();
}

bool t_iterable(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "iterable");
  return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
}

bool t_sequence(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "sequence");
  return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
}

bool t_odd(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "odd");
  const int64_t i = integer_operand(v, "odd");
  return (i % 2 + 2) % 2 == 1;
}

bool t_even(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "even");
  return integer_operand(v, "even") % 2 == 0;
}

bool t_divisibleby(RenderState&, const Value& v, const CallArgs& a) {
  const int64_t d = integer_operand(one_arg(a, "divisibleby"), "divisibleby");
  if (d == 0) fault("divisibleby(0): division by zero");
  return integer_operand(v, "divisibleby") % d == 0;
}

bool t_eq(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Eq, v, one_arg(a, "eq")); }
bool t_ne(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Ne, v, one_arg(a, "ne")); }
bool t_lt(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Lt, v, one_arg(a, "lt")); }
bool t_le(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Le, v, one_arg(a, "le")); }
bool t_gt(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Gt, v, one_arg(a, "gt")); }
bool t_ge(RenderState&, const Value& v, const CallArgs& a) { return compare_op(Op::Ge, v, one_arg(a, "ge")); }
bool t_in(RenderState&, const Value& v, const CallArgs& a) { return contains(one_arg(a, "in"), v); }

// Python's `is`: singletons by value, containers by identity, other scalars by equality (the
// interpreter shares small ints and interned strings, which is what templates rely on).
bool t_sameas(RenderState&, const Value& v, const CallArgs& a) {
  const Value& other = one_arg(a, "sameas");
  if (v.type() != other.type()) return false;
  switch (v.type()) {
    case Value::Type::List:
      return &v.as_list() == &other.as_list();
    case Value::Type::Dict:
      return &v.as_dict() == &other.as_dict();
    default:
      return equals(v, other);
  }
}

bool t_lower(RenderState& state, const Value& v, const CallArgs& a) {
  no_args(a, "lower");
  const std::string s = v.str(state.max_bytes());
  return s == text::to_lower(s) && s != text::to_upper(s);
}

bool t_upper(RenderState& state, const Value& v, const CallArgs& a) {
  no_args(a, "upper");
  const std::string s = v.str(state.max_bytes());
  return s == text::to_upper(s) && s != text::to_lower(s);
}

bool t_escaped(RenderState&, const Value&, const CallArgs& a) {
  no_args(a, "escaped");
  return false;  // no autoescaping, so nothing is ever marked safe
}

bool t_filter(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "filter");
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}

bool t_test(RenderState&, const Value& v, const CallArgs& a) {
  no_args(a, "test");
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

constexpr std::pair<std::string_view, TestFn> kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
    {"sameas", t_sameas},
    {"lower", t_lower},
    {"upper", t_upper},
    {"escaped", t_escaped},
    {"filter", t_filter},
    {"test", t_test},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const auto& [n, fn] : kTests) {
    if (n == name) return fn;
  }
  return nullptr;
}

}  // namespace px::jinja
