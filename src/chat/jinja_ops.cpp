#include "chat/jinja_ops.h"

#include <cmath>
#include <limits>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

const char* op_symbol(Op op) {
  switch (op) {
    case Op::Add:
      return "+";
    case Op::Sub:
      return "-";
    case Op::Mul:
      return "*";
    case Op::Div:
      return "/";
    case Op::FloorDiv:
      return "//";
    case Op::Mod:
      return "%";
    case Op::Pow:
      return "**";
    case Op::Concat:
      return "~";
    case Op::Neg:
      return "-";
    case Op::Pos:
      return "+";
    case Op::Not:
      return "not";
    case Op::Eq:
      return "==";
    case Op::Ne:
      return "!=";
    case Op::Lt:
      return "<";
    case Op::Le:
      return "<=";
    case Op::Gt:
      return ">";
    case Op::Ge:
      return ">=";
    case Op::In:
      return "in";
    case Op::NotIn:
      return "not in";
  }
  return "?";
}

[[noreturn]] void unsupported(Op op, const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) {
    fault("undefined value used with '{}' (operands: {} and {})", op_symbol(op), a.type_name(), b.type_name());
  }
  fault("unsupported operand types for {}: '{}' and '{}'", op_symbol(op), a.type_name(), b.type_name());
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fault("integer overflow");
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) fault("integer overflow");
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fault("integer overflow");
  return r;
}

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) fault("integer division or modulo by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) fault("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  if (b == 0) fault("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value repeat(RenderState& state, const Value& seq, int64_t times) {
  if (times <= 0) return seq.is_string() ? Value("") : Value::list({});
  const auto n = static_cast<uint64_t>(times);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty()) state.check_size(s.size() > state.max_bytes() / n ? state.max_bytes() + 1 : s.size() * n);
    std::string out;
    out.reserve(s.size() * (s.empty() ? 0 : n));
    for (uint64_t i = 0; i < n && !s.empty(); ++i) out += s;
    return Value(std::move(out));
  }
  const auto& items = seq.as_list();
  if (!items.empty()) {
    state.count_work(items.size() > std::numeric_limits<uint64_t>::max() / n ? std::numeric_limits<uint64_t>::max()
                                                                             : items.size() * n);
  }
  std::vector<Value> out;
  for (uint64_t i = 0; i < n && !items.empty(); ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out));
}

Value power(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float() && b.as_int() >= 0) {
    int64_t base = a.as_int();
    int64_t exp = b.as_int();
    int64_t result = 1;
    while (exp > 0) {
      if (exp & 1) result = checked_mul(result, base);
      exp >>= 1;
      if (exp > 0) base = checked_mul(base, base);
    }
    return Value(result);
  }
  const double x = a.as_double();
  const double y = b.as_double();
  if (x == 0.0 && y < 0) fault("0.0 cannot be raised to a negative power");
  const double r = std::pow(x, y);
  if (std::isnan(r) && !std::isnan(x) && !std::isnan(y))
    fault("negative number cannot be raised to a fractional power");
  return Value(r);
}

// Python slice bounds for a sequence of `len` items; returns the chosen indices.
std::vector<int64_t> slice_indices(int64_t len, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const auto bound = [](const Value& v, const char* what) -> const Value* {
    if (v.is_undefined() || v.is_none()) return nullptr;
    if (!v.is_int() && !v.is_bool()) fault("slice {} must be an integer, got {}", what, v.type_name());
    return &v;
  };
  const Value* start_p = bound(start_v, "start");
  const Value* stop_p = bound(stop_v, "stop");
  const Value* step_p = bound(step_v, "step");
  const int64_t step = step_p ? step_p->as_int() : 1;
  if (step == 0) fault("slice step cannot be zero");
  const auto clamp = [&](const Value* v, int64_t fallback) {
    if (v == nullptr) return fallback;
    int64_t i = v->as_int();
    if (i < 0) i += len;
    if (step > 0) return std::clamp<int64_t>(i, 0, len);
    return std::clamp<int64_t>(i, -1, len - 1);
  };
  const int64_t start = clamp(start_p, step > 0 ? 0 : len - 1);
  const int64_t stop = clamp(stop_p, step > 0 ? len : -1);
  std::vector<int64_t> out;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) out.push_back(i);
  } else {
    for (int64_t i = start; i > stop; i += step) out.push_back(i);
  }
  return out;
}

}  // namespace

Value unary_op(Op op, const Value& v) {
  if (op == Op::Not) return Value(!v.truthy());
  if (!v.is_number()) fault("bad operand type for unary {}: '{}'", op_symbol(op), v.type_name());
  if (v.is_float()) return Value(op == Op::Neg ? -v.as_double() : v.as_double());
  const int64_t i = v.as_int();
  if (op == Op::Pos) return Value(i);
  if (i == std::numeric_limits<int64_t>::min()) fault("integer overflow");
  return Value(-i);
}

Value binary_op(RenderState& state, Op op, const Value& a, const Value& b) {
  if (op == Op::Concat) {
    std::string s = a.str(state.max_bytes());
    state.check_size(s.size() + (b.is_string() ? b.as_string().size() : 0));
    s += b.str(state.max_bytes() - s.size());
    return Value(std::move(s));
  }
  const bool numbers = a.is_number() && b.is_number();
  const bool ints = numbers && !a.is_float() && !b.is_float();
  switch (op) {
    case Op::Add:
      if (ints) return Value(checked_add(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_double() + b.as_double());
      if (a.is_string() && b.is_string()) {
        state.check_size(a.as_string().size() + b.as_string().size());
        return Value(a.as_string() + b.as_string());
      }
      if (a.is_list() && b.is_list()) {
        state.count_work(a.as_list().size() + b.as_list().size());
        std::vector<Value> items = a.as_list();
        items.insert(items.end(), b.as_list().begin(), b.as_list().end());
        return Value::list(std::move(items));
      }
      unsupported(op, a, b);
    case Op::Sub:
      if (ints) return Value(checked_sub(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_double() - b.as_double());
      unsupported(op, a, b);
    case Op::Mul:
      if (ints) return Value(checked_mul(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_double() * b.as_double());
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(state, a, b.as_int());
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(state, b, a.as_int());
      unsupported(op, a, b);
    case Op::Div:
      if (!numbers) unsupported(op, a, b);
      if (b.as_double() == 0.0) fault("division by zero");
      return Value(a.as_double() / b.as_double());
    case Op::FloorDiv:
      if (ints) return Value(floor_div(a.as_int(), b.as_int()));
      if (!numbers) unsupported(op, a, b);
      if (b.as_double() == 0.0) fault("float floor division by zero");
      return Value(std::floor(a.as_double() / b.as_double()));
    case Op::Mod:
      if (ints) return Value(floor_mod(a.as_int(), b.as_int()));
      if (numbers) {
        const double y = b.as_double();
        if (y == 0.0) fault("float modulo by zero");
        double r = std::fmod(a.as_double(), y);
        if (r != 0.0 && ((r < 0) != (y < 0))) r += y;
        return Value(r);
      }
      if (a.is_string()) return Value(percent_format(state, a.as_string(), b));
      unsupported(op, a, b);
    case Op::Pow:
      if (!numbers) unsupported(op, a, b);
      return power(a, b);
    default:
      fault("internal error: '{}' is not a binary operator", op_symbol(op));
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Value::Type::String:
      if (!item.is_string()) fault("'in <string>' needs a string on the left, got {}", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Type::List:
      for (const Value& v : container.as_list()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      if (!item.is_string()) return false;
      const Dict& d = container.is_dict() ? container.as_dict() : container.as_namespace();
      return d.find(item.as_string()) != nullptr;
    }
    case Value::Type::Undefined:
      return false;  // Jinja's Undefined iterates as empty
    default:
      fault("argument of type '{}' is not iterable", container.type_name());
  }
}

bool compare_op(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::Eq:
      return equals(a, b);
    case Op::Ne:
      return !equals(a, b);
    case Op::In:
      return contains(b, a);
    case Op::NotIn:
      return !contains(b, a);
    default:
      break;
  }
  if (a.is_float() && std::isnan(a.as_double())) return false;  // every comparison with NaN is false
  if (b.is_float() && std::isnan(b.as_double())) return false;
  const bool comparable =
      (a.is_number() && b.is_number()) || (a.is_string() && b.is_string()) || (a.is_list() && b.is_list());
  if (!comparable) fault("'{}' not supported between '{}' and '{}'", op_symbol(op), a.type_name(), b.type_name());
  const int c = compare(a, b);
  switch (op) {
    case Op::Lt:
      return c < 0;
    case Op::Le:
      return c <= 0;
    case Op::Gt:
      return c > 0;
    case Op::Ge:
      return c >= 0;
    default:
      fault("internal error: '{}' is not a comparison", op_symbol(op));
  }
}

Value slice(RenderState& state, const Value& target, const Value& start, const Value& stop, const Value& step) {
  if (target.is_list()) {
    const auto& items = target.as_list();
    std::vector<Value> out;
    for (int64_t i : slice_indices(static_cast<int64_t>(items.size()), start, stop, step)) {
      out.push_back(items[static_cast<size_t>(i)]);
    }
    state.count_work(out.size());
    return Value::list(std::move(out));
  }
  if (target.is_string()) {
    const auto cps = text::code_points(target.as_string());
    std::string out;
    for (int64_t i : slice_indices(static_cast<int64_t>(cps.size()), start, stop, step)) {
      out += cps[static_cast<size_t>(i)];
    }
    return Value(std::move(out));
  }
  if (target.is_undefined()) return Value();
  fault("a '{}' value cannot be sliced", target.type_name());
}

}  // namespace px::jinja
