#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

constexpr size_t kIndexThreshold = 16;

// Appends to a string, faulting once it would pass `max` bytes: printing a list that holds the
// same large string a million times must fail fast, not allocate terabytes.
class CappedWriter {
 public:
  explicit CappedWriter(size_t max) : max_(max) {}
  void add(std::string_view s) {
    if (s.size() > max_ - out_.size()) fault("rendered value exceeds {} bytes", max_);
    out_ += s;
  }
  void add(char c) { add(std::string_view(&c, 1)); }
  std::string take() { return std::move(out_); }

 private:
  size_t max_;
  std::string out_;
};

void check_nesting(int depth) {
  // Namespaces may refer to themselves (`set ns.me = ns`), so recursion is bounded here too.
  if (depth > kMaxValueDepth + 8) fault("value nested deeper than {} levels", kMaxValueDepth);
}

void write_repr(CappedWriter& w, const Value& v, int depth) {
  check_nesting(depth);
  switch (v.type()) {
    case Value::Type::Undefined:
      w.add("Undefined");
      return;
    case Value::Type::None:
      w.add("None");
      return;
    case Value::Type::Bool:
      w.add(v.as_bool() ? "True" : "False");
      return;
    case Value::Type::Int:
      w.add(std::to_string(v.as_int()));
      return;
    case Value::Type::Float:
      w.add(format_python_float(v.as_double()));
      return;
    case Value::Type::String:
      w.add(python_string_repr(v.as_string()));
      return;
    case Value::Type::List: {
      const bool tuple = v.is_tuple();
      w.add(tuple ? '(' : '[');
      bool first = true;
      for (const Value& item : v.as_list()) {
        if (!first) w.add(", ");
        first = false;
        write_repr(w, item, depth + 1);
      }
      if (tuple && v.as_list().size() == 1) w.add(',');
      w.add(tuple ? ')' : ']');
      return;
    }
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      const Dict& d = v.is_dict() ? v.as_dict() : v.as_namespace();
      if (v.is_namespace()) w.add("<Namespace ");
      w.add('{');
      bool first = true;
      for (const auto& [key, item] : d.entries()) {
        if (!first) w.add(", ");
        first = false;
        w.add(python_string_repr(key));
        w.add(": ");
        write_repr(w, item, depth + 1);
      }
      w.add('}');
      if (v.is_namespace()) w.add('>');
      return;
    }
    case Value::Type::Callable:
      w.add("<function " + v.as_callable().name + ">");
      return;
  }
}

uint32_t decode_code_point(std::string_view cp) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(cp[i])); };
  switch (cp.size()) {
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default:
      return b(0) < 0x80 ? b(0) : 0xFFFD;  // a stray byte is not text; write the replacement
  }
}

void write_json_string(CappedWriter& w, std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  for (std::string_view cp : text::code_points(s)) {
    const char c = cp[0];
    if (cp.size() == 1 && static_cast<unsigned char>(c) < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
          } else {
            out += c;
          }
      }
      continue;
    }
    const uint32_t code = decode_code_point(cp);
    if (!ensure_ascii) {
      if (code == 0xFFFD && cp.size() == 1) {
        out += "\xEF\xBF\xBD";
      } else {
        out += cp;
      }
    } else if (code < 0x10000) {
      out += fmt::format("\\u{:04x}", code);
    } else {
      const uint32_t v = code - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    }
  }
  out += '"';
  w.add(out);
}

void write_json(CappedWriter& w, const Value& v, const JsonFormat& f, int depth) {
  check_nesting(depth);
  const auto newline = [&](int level) {
    if (f.indent < 0) return;
    w.add('\n');
    w.add(std::string(static_cast<size_t>(f.indent) * static_cast<size_t>(level), ' '));
  };
  const std::string item_sep = f.item_separator ? *f.item_separator : (f.indent >= 0 ? "," : ", ");
  switch (v.type()) {
    case Value::Type::Undefined:
    case Value::Type::None:
      w.add("null");
      return;
    case Value::Type::Bool:
      w.add(v.as_bool() ? "true" : "false");
      return;
    case Value::Type::Int:
      w.add(std::to_string(v.as_int()));
      return;
    case Value::Type::Float: {
      const double d = v.as_double();
      if (std::isnan(d)) {
        w.add("NaN");
      } else if (std::isinf(d)) {
        w.add(d > 0 ? "Infinity" : "-Infinity");
      } else {
        w.add(format_python_float(d));
      }
      return;
    }
    case Value::Type::String:
      write_json_string(w, v.as_string(), f.ensure_ascii);
      return;
    case Value::Type::List: {
      const auto& items = v.as_list();
      if (items.empty()) {
        w.add("[]");
        return;
      }
      w.add('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) w.add(item_sep);
        newline(depth + 1);
        write_json(w, items[i], f, depth + 1);
      }
      newline(depth);
      w.add(']');
      return;
    }
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      const Dict& d = v.is_dict() ? v.as_dict() : v.as_namespace();
      if (d.empty()) {
        w.add("{}");
        return;
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : d.entries()) entries.push_back(&e);
      if (f.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      w.add('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) w.add(item_sep);
        newline(depth + 1);
        write_json_string(w, entries[i]->first, f.ensure_ascii);
        w.add(f.key_separator);
        write_json(w, entries[i]->second, f, depth + 1);
      }
      newline(depth);
      w.add('}');
      return;
    }
    case Value::Type::Callable:
      fault("tojson: a function ('{}') is not JSON serializable", v.as_callable().name);
  }
}

int three_way(double a, double b) {
  // NaN sorts after every number so that sorting stays a strict weak order.
  const bool na = std::isnan(a);
  const bool nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  return a < b ? -1 : (a > b ? 1 : 0);
}

}  // namespace

// ---- WorkBudget ----

thread_local WorkBudget* WorkBudget::current_ = nullptr;

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

WorkBudget::WorkBudget(size_t max_string_bytes, uint64_t max_text_bytes, uint64_t max_iterations, double max_seconds)
    : max_string_bytes_(max_string_bytes),
      max_text_bytes_(max_text_bytes),
      max_iterations_(max_iterations),
      max_seconds_(max_seconds),
      start_ns_(now_ns()) {}

void WorkBudget::charge_text(size_t bytes) {
  if (bytes > max_string_bytes_)
    fault("template builds a string of {} bytes, over the {} allowed", bytes, max_string_bytes_);
  text_bytes_ += bytes;
  if (text_bytes_ > max_text_bytes_) fault("template builds more than {} bytes of text in all", max_text_bytes_);
  if (bytes > 4096) check_clock();
  if ((++ticks_ & 63) == 0) check_clock();
}

void WorkBudget::charge_iterations(uint64_t n) {
  iterations_ += n;
  if (iterations_ > max_iterations_) {
    fault("template exceeds {} loop iterations (is it looping without end?)", max_iterations_);
  }
  if ((++ticks_ & 63) == 0) check_clock();
}

void WorkBudget::check_clock() {
  if (max_seconds_ <= 0) return;
  if (static_cast<double>(now_ns() - start_ns_) > max_seconds_ * 1e9) {
    fault("template rendering took longer than {} seconds", max_seconds_);
  }
}

// ---- Dict ----

const Value* Dict::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  depth_ = std::max(depth_, value.depth() + 1);
  if (index_.empty()) {
    for (auto& [k, v] : entries_) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
  } else if (auto it = index_.find(key); it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  if (entries_.size() > kIndexThreshold) {
    if (index_.empty()) {
      for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
    } else {
      index_.emplace(entries_.back().first, entries_.size() - 1);
    }
  }
}

void Dict::clear() {
  entries_.clear();
  index_.clear();
  depth_ = 1;
}

// ---- Value ----

Value::Value(std::string s) {
  if (WorkBudget* budget = WorkBudget::current()) budget->charge_text(s.size());
  v_ = std::make_shared<const std::string>(std::move(s));
}

Value Value::list(std::vector<Value> items) { return make_list(std::move(items), false); }
Value Value::tuple(std::vector<Value> items) { return make_list(std::move(items), true); }

Value Value::make_list(std::vector<Value> items, bool is_tuple) {
  auto l = std::make_shared<List>();
  int depth = 0;
  for (const Value& v : items) depth = std::max(depth, v.depth());
  l->depth = depth + 1;
  if (l->depth > kMaxValueDepth) fault("list nested deeper than {} levels", kMaxValueDepth);
  l->items = std::move(items);
  l->is_tuple = is_tuple;
  Value out;
  out.v_ = std::shared_ptr<const List>(std::move(l));
  return out;
}

Value Value::dict(Dict d) {
  if (d.depth() > kMaxValueDepth) fault("dict nested deeper than {} levels", kMaxValueDepth);
  Value out;
  out.v_ = std::make_shared<const Dict>(std::move(d));
  return out;
}

Value Value::callable(std::string name, std::function<Value(const CallArgs&)> fn) {
  Value out;
  out.v_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return out;
}

namespace {
template <typename Json>
Value from_json_at(const Json& j, int depth) {
  if (depth > kMaxValueDepth) fault("JSON context nested deeper than {} levels", kMaxValueDepth);
  switch (j.type()) {
    case Json::value_t::null:
      return Value::none();
    case Json::value_t::boolean:
      return Value(j.template get<bool>());
    case Json::value_t::number_integer:
      return Value(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float:
      return Value(j.template get<double>());
    case Json::value_t::string:
      return Value(j.template get_ref<const std::string&>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), from_json_at(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default:
      fault("JSON context holds a value of type '{}' that templates cannot use", j.type_name());
  }
}
}  // namespace

Value Value::from_json(const nlohmann::json& j) { return from_json_at(j, 0); }
Value Value::from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(v_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

int Value::depth() const {
  switch (type()) {
    case Type::List:
      return std::get<std::shared_ptr<const List>>(v_)->depth;
    case Type::Dict:
      return as_dict().depth();
    case Type::Namespace:
      return 1;
    default:
      return 0;
  }
}

const char* Value::type_name() const {
  switch (type()) {
    case Type::Undefined:
      return "undefined";
    case Type::None:
      return "NoneType";
    case Type::Bool:
      return "bool";
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::String:
      return "str";
    case Type::List:
      return "list";
    case Type::Dict:
      return "dict";
    case Type::Namespace:
      return "Namespace";
    case Type::Callable:
      return "function";
  }
  return "?";
}

bool Value::truthy() const {
  switch (type()) {
    case Type::Undefined:
    case Type::None:
      return false;
    case Type::Bool:
      return as_bool();
    case Type::Int:
      return as_int() != 0;
    case Type::Float:
      return as_double() != 0.0;
    case Type::String:
      return !as_string().empty();
    case Type::List:
      return !as_list().empty();
    case Type::Dict:
      return !as_dict().empty();
    case Type::Namespace:
    case Type::Callable:
      return true;
  }
  return false;
}

std::string Value::str(size_t max_bytes) const {
  if (is_string()) {
    if (as_string().size() > max_bytes) fault("rendered value exceeds {} bytes", max_bytes);
    return as_string();
  }
  if (is_undefined()) return "";
  return repr(max_bytes);
}

std::string Value::repr(size_t max_bytes) const {
  CappedWriter w(max_bytes);
  write_repr(w, *this, 0);
  return w.take();
}

// ---- CallArgs ----

const Value* CallArgs::find_named(std::string_view name) const {
  for (const auto& [k, v] : named) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value CallArgs::get(size_t index, std::string_view name, Value fallback) const {
  if (index < positional.size()) return positional[index];
  if (const Value* v = find_named(name)) return *v;
  return fallback;
}

void CallArgs::expect_at_most(std::string_view what, size_t max_positional,
                              std::initializer_list<std::string_view> allowed) const {
  if (positional.size() > max_positional) {
    fault("{} takes at most {} positional argument(s), {} given", what, max_positional, positional.size());
  }
  for (const auto& [k, v] : named) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      fault("{} got an unexpected keyword argument '{}'", what, k);
    }
  }
}

// ---- comparisons ----

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::Undefined:
    case Value::Type::None:
      return true;
    case Value::Type::String:
      return a.as_string() == b.as_string();
    case Value::Type::List: {
      if (a.is_tuple() != b.is_tuple()) return false;  // Python: (1, 2) != [1, 2]
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Type::Dict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (other == nullptr || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Type::Namespace:
      return &a.as_namespace() == &b.as_namespace();
    case Value::Type::Callable:
      return &a.as_callable() == &b.as_callable();
    default:
      return false;
  }
}

int compare(const Value& a, const Value& b, bool case_insensitive) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return three_way(a.as_double(), b.as_double());
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = case_insensitive ? text::to_lower(a.as_string()).compare(text::to_lower(b.as_string()))
                                   : a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      const int c = compare(x[i], y[i], case_insensitive);
      if (c != 0) return c;
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  fault("cannot compare '{}' with '{}'", a.type_name(), b.type_name());
}

// ---- text forms ----

std::string to_json_text(const Value& v, const JsonFormat& format, size_t max_bytes) {
  CappedWriter w(max_bytes);
  write_json(w, v, format, 0);
  return w.take();
}

std::string format_python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "-1.2345e+02"
  const size_t e_at = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_at);
  std::string out;
  if (!mantissa.empty() && mantissa[0] == '-') {
    out += '-';
    mantissa.remove_prefix(1);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::from_chars(sci.data() + e_at + 1 + (sci[e_at + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  // Python's repr switches to exponent notation outside [1e-4, 1e16).
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out;
}

std::string python_string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

}  // namespace px::jinja
