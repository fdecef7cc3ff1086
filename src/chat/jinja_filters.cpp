// Filters: `value | name(args)`. Names, arguments and defaults follow Jinja2 3.1, except tojson,
// which follows transformers' override (ensure_ascii=False, Python json.dumps separators).
#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_set>
#include <utility>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_ops.h"
#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

std::string text_of(RenderState& state, const Value& v) { return v.str(state.max_bytes()); }

bool bool_arg(const Value& v) { return v.truthy(); }

int64_t int_arg(const Value& v, std::string_view what) {
  if (!v.is_int() && !v.is_bool()) fault("{} must be an integer, got {}", what, v.type_name());
  return v.as_int();
}

// Dotted attribute path as Jinja's make_attrgetter reads it: "a.b", "0.name".
Value resolve_path(RenderState& state, const Value& item, const Value& path) {
  if (path.is_int()) return get_item(state, item, path);
  if (!path.is_string()) fault("attribute must be a string or an integer, got {}", path.type_name());
  Value current = item;
  const std::string dot = ".";
  for (const std::string& part : text::split(path.as_string(), &dot, -1)) {
    const bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? get_item(state, current, Value(static_cast<int64_t>(std::stoll(part))))
                      : get_item(state, current, Value(part));
  }
  return current;
}

std::vector<Value> items_of(RenderState& state, const Value& v, std::string_view filter) {
  std::vector<Value> items = iterate(v, std::string("filter '") + std::string(filter) + "'");
  state.count_work(items.size());
  return items;
}

// ---- strings ----

Value f_trim(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("trim", 1, {"chars"});
  const Value chars = args.get(0, "chars");
  std::optional<std::string> set;
  if (!chars.is_undefined() && !chars.is_none()) set = text_of(state, chars);
  return Value(text::strip(text_of(state, v), set ? &*set : nullptr, true, true));
}

Value f_upper(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("upper", 0);
  return Value(text::to_upper(text_of(state, v)));
}

Value f_lower(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("lower", 0);
  return Value(text::to_lower(text_of(state, v)));
}

Value f_capitalize(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("capitalize", 0);
  std::string s = text::to_lower(text_of(state, v));
  if (!s.empty()) s[0] = text::to_upper(s.substr(0, 1))[0];
  return Value(std::move(s));
}

// Jinja's title: words start after '-', whitespace or an opening bracket.
Value f_title(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("title", 0);
  std::string s = text_of(state, v);
  bool word_start = true;
  for (char& c : s) {
    const bool separator = c == '-' || text::is_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      word_start = true;
      continue;
    }
    c = word_start ? text::to_upper(std::string(1, c))[0] : text::to_lower(std::string(1, c))[0];
    word_start = false;
  }
  return Value(std::move(s));
}

Value f_replace(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("replace", 3, {"old", "new", "count"});
  const Value from = args.get(0, "old");
  const Value to = args.get(1, "new");
  if (from.is_undefined() || to.is_undefined()) fault("replace needs the old and new strings");
  const Value count = args.get(2, "count", Value::none());
  return Value(text::replace(text_of(state, v), text_of(state, from), text_of(state, to),
                             count.is_none() ? -1 : int_arg(count, "replace count"), state.max_bytes()));
}

Value f_indent(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("indent", 3, {"width", "first", "blank"});
  const Value width = args.get(0, "width", Value(4));
  const std::string pad =
      width.is_string() ? width.as_string()
                        : std::string(static_cast<size_t>(std::max<int64_t>(0, int_arg(width, "indent width"))), ' ');
  const bool first = bool_arg(args.get(1, "first", Value(false)));
  const bool blank = bool_arg(args.get(2, "blank", Value(false)));
  const std::string s = text_of(state, v) + "\n";  // Jinja's quirk, so a trailing newline is kept
  const auto lines = text::split_lines(s);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if ((i > 0 || first) && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
    state.check_size(out.size());
  }
  if (lines.empty() && first) out = pad;
  return Value(std::move(out));
}

Value f_format(RenderState& state, const Value& v, const CallArgs& args) {
  if (!args.positional.empty() && !args.named.empty()) fault("format takes positional or keyword arguments, not both");
  if (!args.named.empty()) {
    Dict named;
    for (const auto& [k, x] : args.named) named.set(k, x);
    return Value(percent_format(state, text_of(state, v), Value::dict(std::move(named))));
  }
  return Value(percent_format(state, text_of(state, v), Value::tuple(args.positional)));
}

Value f_escape(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("escape", 0);
  std::string out;
  for (char c : text_of(state, v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  state.check_size(out.size());
  return Value(std::move(out));
}

Value f_safe(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("safe", 0);
  return v;  // nothing is autoescaped, so marking text safe changes nothing
}

Value f_string(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("string", 0);
  return Value(text_of(state, v));
}

Value f_tojson(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat format;
  format.ensure_ascii = bool_arg(args.get(0, "ensure_ascii", Value(false)));
  const Value indent = args.get(1, "indent", Value::none());
  if (!indent.is_none()) format.indent = static_cast<int>(std::clamp<int64_t>(int_arg(indent, "tojson indent"), 0, 64));
  const Value separators = args.get(2, "separators", Value::none());
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.as_list().size() != 2 || !separators.as_list()[0].is_string() ||
        !separators.as_list()[1].is_string()) {
      fault("tojson separators must be a pair of strings, like (', ', ': ')");
    }
    format.item_separator = separators.as_list()[0].as_string();
    format.key_separator = separators.as_list()[1].as_string();
  }
  format.sort_keys = bool_arg(args.get(3, "sort_keys", Value(false)));
  return Value(to_json_text(v, format, state.max_bytes()));
}

// ---- numbers ----

// Python int(str): optional sign, digits with single underscores between, surrounding spaces.
std::optional<int64_t> parse_int(std::string_view s, int base) {
  s = text::strip(s, nullptr, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.size() > 2 && s[0] == '0') {
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) s.remove_prefix(2);
  }
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  int64_t value = 0;
  char prev = 0;
  for (char c : s) {
    if (c == '_') {
      if (prev == '_') return std::nullopt;
      prev = c;
      continue;
    }
    prev = c;
    const int lower = std::tolower(static_cast<unsigned char>(c));
    const int digit =
        lower >= '0' && lower <= '9' ? lower - '0' : (lower >= 'a' && lower <= 'z' ? lower - 'a' + 10 : 99);
    if (digit >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, digit, &value))
      return std::nullopt;
  }
  return negative ? -value : value;
}

std::optional<double> parse_float(std::string_view s) {
  const std::string t(text::strip(s, nullptr, true, true));
  if (t.empty()) return std::nullopt;
  std::string lowered = text::to_lower(t);
  if (lowered == "nan" || lowered == "+nan" || lowered == "-nan") return std::nan("");
  if (lowered.find("0x") != std::string::npos) return std::nullopt;  // strtod reads hex, Python does not
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return d;
}

Value f_int(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("int", 2, {"default", "base"});
  const Value fallback = args.get(0, "default", Value(0));
  const int64_t base = int_arg(args.get(1, "base", Value(10)), "int base");
  if (base < 2 || base > 36) fault("int base must be between 2 and 36");
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.as_string(), static_cast<int>(base))) return Value(*i);
    if (auto d = parse_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return Value(static_cast<int64_t>(*d));
    }
  }
  return fallback;
}

Value f_float(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("float", 1, {"default"});
  const Value fallback = args.get(0, "default", Value(0.0));
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_float(v.as_string())) return Value(*d);
  }
  return fallback;
}

Value f_abs(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("abs", 0);
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (!v.is_number()) fault("bad operand type for abs(): '{}'", v.type_name());
  if (v.as_int() == INT64_MIN) fault("integer overflow");
  return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
}

Value f_round(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("round", 2, {"precision", "method"});
  const int64_t precision = int_arg(args.get(0, "precision", Value(0)), "round precision");
  const Value method_v = args.get(1, "method", Value("common"));
  const std::string method = method_v.is_string() ? method_v.as_string() : "";
  if (method != "common" && method != "ceil" && method != "floor") fault("round method must be common, ceil or floor");
  if (!v.is_number()) fault("round needs a number, got {}", v.type_name());
  if (method == "common" && !v.is_float() && precision >= 0) return Value(v.as_int());  // Python round(int) is int
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  // Python's round() breaks ties to even.
  const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value(r / scale);
}

// ---- sequences ----

Value f_length(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("length", 0);
  switch (v.type()) {
    case Value::Type::String:
      return Value(static_cast<int64_t>(text::count_code_points(v.as_string())));
    case Value::Type::List:
      return Value(static_cast<int64_t>(v.as_list().size()));
    case Value::Type::Dict:
      return Value(static_cast<int64_t>(v.as_dict().size()));
    case Value::Type::Namespace:
      return Value(static_cast<int64_t>(v.as_namespace().size()));
    case Value::Type::Undefined:
      return Value(int64_t{0});
    default:
      fault("object of type '{}' has no length", v.type_name());
  }
}

Value f_list(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("list", 0);
  return Value::list(items_of(state, v, "list"));
}

Value f_first(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("first", 0);
  if (v.is_list()) return v.as_list().empty() ? Value() : v.as_list().front();
  const auto items = iterate(v, "filter 'first'");
  return items.empty() ? Value() : items.front();
}

Value f_last(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("last", 0);
  if (v.is_list()) return v.as_list().empty() ? Value() : v.as_list().back();
  const auto items = iterate(v, "filter 'last'");
  return items.empty() ? Value() : items.back();
}

Value f_reverse(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("reverse", 0);
  if (v.is_string()) {
    auto cps = text::code_points(v.as_string());
    std::string out;
    for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
    return Value(std::move(out));
  }
  auto items = items_of(state, v, "reverse");
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_join(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("join", 2, {"d", "attribute"});
  const std::string sep = text_of(state, args.get(0, "d", Value("")));
  const Value attribute = args.get(1, "attribute", Value::none());
  std::string out;
  bool first = true;
  for (const Value& item : items_of(state, v, "join")) {
    if (!first) out += sep;
    first = false;
    out += text_of(state, attribute.is_none() ? item : resolve_path(state, item, attribute));
    state.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_default(RenderState&, const Value& v, const CallArgs& args) {
  args.expect_at_most("default", 2, {"default_value", "boolean"});
  const Value fallback = args.get(0, "default_value", Value(""));
  const bool boolean = bool_arg(args.get(1, "boolean", Value(false)));
  if (v.is_undefined() || (boolean && !v.truthy())) return fallback;
  return v;
}

Value f_items(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("items", 0);
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) fault("filter 'items' needs a mapping, got {}", v.type_name());
  return find_method(state, v, "items").as_callable().fn(args);
}

Value f_keys_or_values(RenderState& state, const Value& v, const CallArgs& args, const char* which) {
  args.expect_at_most(which, 0);
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) fault("filter '{}' needs a mapping, got {}", which, v.type_name());
  return find_method(state, v, which).as_callable().fn(args);
}
Value f_keys(RenderState& s, const Value& v, const CallArgs& a) { return f_keys_or_values(s, v, a, "keys"); }
Value f_values(RenderState& s, const Value& v, const CallArgs& a) { return f_keys_or_values(s, v, a, "values"); }

Value f_attr(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("attr", 1);
  if (args.positional.empty()) fault("attr needs an attribute name");
  return get_attribute(state, v, text_of(state, args.positional[0]));
}

// The remaining arguments after the first `skip` positional ones, for a filter or test by name.
CallArgs rest_args(const CallArgs& args, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.named = args.named;
  return rest;
}

Value f_map(RenderState& state, const Value& v, const CallArgs& args) {
  std::vector<Value> out;
  if (const Value* attribute = args.find_named("attribute")) {
    args.expect_at_most("map", 0, {"attribute", "default"});
    const Value* fallback = args.find_named("default");
    for (const Value& item : items_of(state, v, "map")) {
      Value got = resolve_path(state, item, *attribute);
      out.push_back(got.is_undefined() && fallback != nullptr ? *fallback : std::move(got));
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    fault("map needs a filter name or attribute=...");
  }
  const FilterFn filter = find_filter(args.positional[0].as_string());
  if (filter == nullptr) fault("map: unknown filter '{}'", args.positional[0].as_string());
  const CallArgs rest = rest_args(args, 1);
  for (const Value& item : items_of(state, v, "map")) out.push_back(filter(state, item, rest));
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr: keep items whose test (or truthiness) is `keep`.
Value select_items(RenderState& state, const Value& v, const CallArgs& args, bool keep, bool by_attribute,
                   const char* name) {
  size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) fault("{} needs an attribute name", name);
    attribute = args.positional[next++];
  }
  TestFn test = nullptr;
  if (next < args.positional.size()) {
    const Value& test_name = args.positional[next++];
    if (!test_name.is_string()) fault("{}: the test name must be a string", name);
    test = find_test(test_name.as_string());
    if (test == nullptr) fault("{}: unknown test '{}'", name, test_name.as_string());
  }
  const CallArgs rest = rest_args(args, next);
  std::vector<Value> out;
  for (const Value& item : items_of(state, v, name)) {
    const Value subject = by_attribute ? resolve_path(state, item, attribute) : item;
    const bool passed = test != nullptr ? test(state, subject, rest) : subject.truthy();
    if (passed == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(RenderState& s, const Value& v, const CallArgs& a) {
  return select_items(s, v, a, true, false, "select");
}
Value f_reject(RenderState& s, const Value& v, const CallArgs& a) {
  return select_items(s, v, a, false, false, "reject");
}
Value f_selectattr(RenderState& s, const Value& v, const CallArgs& a) {
  return select_items(s, v, a, true, true, "selectattr");
}
Value f_rejectattr(RenderState& s, const Value& v, const CallArgs& a) {
  return select_items(s, v, a, false, true, "rejectattr");
}

// The key an item is sorted / deduplicated / compared by.
Value key_of(RenderState& state, const Value& item, const Value& attribute) {
  return attribute.is_none() || attribute.is_undefined() ? item : resolve_path(state, item, attribute);
}

Value f_sort(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("sort", 3, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = bool_arg(args.get(0, "reverse", Value(false)));
  const bool case_sensitive = bool_arg(args.get(1, "case_sensitive", Value(false)));
  const Value attribute = args.get(2, "attribute", Value::none());
  std::vector<Value> items = items_of(state, v, "sort");
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key_of(state, items[i], attribute), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    const int c = compare(a.first, b.first, !case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (const auto& [key, i] : keyed) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_dictsort(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("dictsort", 3, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fault("dictsort needs a mapping, got {}", v.type_name());
  const bool case_sensitive = bool_arg(args.get(0, "case_sensitive", Value(false)));
  const Value by = args.get(1, "by", Value("key"));
  const bool reverse = bool_arg(args.get(2, "reverse", Value(false)));
  const size_t pos = by.is_string() && by.as_string() == "value" ? 1 : 0;
  std::vector<Value> pairs = find_method(state, v, "items").as_callable().fn(CallArgs{}).as_list();
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const int c = compare(a.as_list()[pos], b.as_list()[pos], !case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(pairs));
}

// A hashable text form for unique(): Python treats 1, 1.0 and True as the same key.
std::string hash_key(const Value& key, bool case_sensitive) {
  if (key.is_string()) return "s" + (case_sensitive ? key.as_string() : text::to_lower(key.as_string()));
  if (key.is_number()) {
    const double d = key.as_double();
    if (!key.is_float() || (std::floor(d) == d && std::fabs(d) < 9e15))
      return "n" + std::to_string(static_cast<int64_t>(d));
    return "n" + format_python_float(d);
  }
  if (key.is_list() || key.is_dict()) fault("unique: unhashable type '{}'", key.type_name());
  return "r" + key.repr();
}

Value f_unique(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("unique", 2, {"case_sensitive", "attribute"});
  const bool case_sensitive = bool_arg(args.get(0, "case_sensitive", Value(false)));
  const Value attribute = args.get(1, "attribute", Value::none());
  std::unordered_set<std::string> seen;
  std::vector<Value> out;
  for (const Value& item : items_of(state, v, "unique")) {
    if (seen.insert(hash_key(key_of(state, item, attribute), case_sensitive)).second) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value min_or_max(RenderState& state, const Value& v, const CallArgs& args, bool want_max, const char* name) {
  args.expect_at_most(name, 2, {"case_sensitive", "attribute"});
  const bool case_sensitive = bool_arg(args.get(0, "case_sensitive", Value(false)));
  const Value attribute = args.get(1, "attribute", Value::none());
  const auto items = items_of(state, v, name);
  if (items.empty()) return Value();
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const int c = compare(key_of(state, items[i], attribute), key_of(state, items[best], attribute), !case_sensitive);
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}
Value f_min(RenderState& s, const Value& v, const CallArgs& a) { return min_or_max(s, v, a, false, "min"); }
Value f_max(RenderState& s, const Value& v, const CallArgs& a) { return min_or_max(s, v, a, true, "max"); }

Value f_sum(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("sum", 2, {"attribute", "start"});
  const Value attribute = args.get(0, "attribute", Value::none());
  Value total = args.get(1, "start", Value(0));
  for (const Value& item : items_of(state, v, "sum")) {
    const Value x = key_of(state, item, attribute);
    if (!x.is_number() || !total.is_number()) fault("sum: cannot add '{}' to '{}'", x.type_name(), total.type_name());
    if (x.is_float() || total.is_float()) {
      total = Value(total.as_double() + x.as_double());
    } else {
      int64_t r;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &r)) fault("integer overflow");
      total = Value(r);
    }
  }
  return total;
}

Value f_batch(RenderState& state, const Value& v, const CallArgs& args) {
  args.expect_at_most("batch", 2, {"linecount", "fill_with"});
  const int64_t n = int_arg(args.get(0, "linecount"), "batch linecount");
  if (n <= 0) fault("batch linecount must be positive");
  const Value fill = args.get(1, "fill_with", Value::none());
  std::vector<Value> rows;
  std::vector<Value> row;
  for (const Value& item : items_of(state, v, "batch")) {
    row.push_back(item);
    if (static_cast<int64_t>(row.size()) == n) rows.push_back(Value::list(std::exchange(row, {})));
  }
  if (!row.empty()) {
    if (!fill.is_none()) {
      state.count_work(static_cast<uint64_t>(n) - row.size());
      while (static_cast<int64_t>(row.size()) < n) row.push_back(fill);
    }
    rows.push_back(Value::list(std::move(row)));
  }
  return Value::list(std::move(rows));
}

constexpr std::pair<std::string_view, FilterFn> kFilters[] = {
    {"trim", f_trim},
    {"upper", f_upper},
    {"lower", f_lower},
    {"capitalize", f_capitalize},
    {"title", f_title},
    {"replace", f_replace},
    {"indent", f_indent},
    {"escape", f_escape},
    {"e", f_escape},
    {"safe", f_safe},
    {"string", f_string},
    {"tojson", f_tojson},
    {"format", f_format},
    {"int", f_int},
    {"float", f_float},
    {"abs", f_abs},
    {"round", f_round},
    {"length", f_length},
    {"count", f_length},
    {"list", f_list},
    {"first", f_first},
    {"last", f_last},
    {"reverse", f_reverse},
    {"join", f_join},
    {"default", f_default},
    {"d", f_default},
    {"items", f_items},
    {"keys", f_keys},
    {"values", f_values},
    {"attr", f_attr},
    {"map", f_map},
    {"select", f_select},
    {"reject", f_reject},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"sort", f_sort},
    {"dictsort", f_dictsort},
    {"unique", f_unique},
    {"min", f_min},
    {"max", f_max},
    {"sum", f_sum},
    {"batch", f_batch},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
  for (const auto& [n, fn] : kFilters) {
    if (n == name) return fn;
  }
  return nullptr;
}

}  // namespace px::jinja
