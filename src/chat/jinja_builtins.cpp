// Methods of values, globals, and attribute / item access.
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <ctime>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

std::string string_arg(const Value& v, std::string_view what) {
  if (!v.is_string()) fault("{} must be a string, got {}", what, v.type_name());
  return v.as_string();
}

int64_t int_arg(const Value& v, std::string_view what) {
  if (!v.is_int() && !v.is_bool()) fault("{} must be an integer, got {}", what, v.type_name());
  return v.as_int();
}

// `chars` argument of strip(): none or absent strips whitespace.
std::optional<std::string> optional_chars(const CallArgs& args) {
  const Value v = args.get(0, "chars");
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  return string_arg(v, "strip() chars");
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// startswith/endswith accept a string or a tuple (list) of strings.
bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  const auto one = [&](const Value& a) {
    const std::string x = string_arg(a, prefix ? "startswith() argument" : "endswith() argument");
    return prefix ? s.compare(0, x.size(), x) == 0 && s.size() >= x.size()
                  : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  }
  return one(affix);
}

template <typename Pred>
bool all_chars(const std::string& s, Pred pred) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)); });
}

// Python's str.title(): a letter after a non-letter starts a word.
std::string title_case(std::string_view s) {
  std::string out(s);
  bool prev_letter = false;
  for (char& c : out) {
    const bool letter = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (letter) c = static_cast<char>(prev_letter ? std::tolower(c) : std::toupper(c));
    prev_letter = letter;
  }
  return out;
}

Value call_string_method(RenderState& state, const std::string& s, std::string_view name, const CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    args.expect_at_most(name, 1, {"chars"});
    const auto chars = optional_chars(args);
    return Value(text::strip(s, chars ? &*chars : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "upper" || name == "lower") {
    args.expect_at_most(name, 0);
    return Value(name == "upper" ? text::to_upper(s) : text::to_lower(s));
  }
  if (name == "split" || name == "rsplit") {
    args.expect_at_most(name, 2, {"sep", "maxsplit"});
    const Value sep = args.get(0, "sep");
    const int64_t maxsplit = int_arg(args.get(1, "maxsplit", Value(-1)), "maxsplit");
    std::optional<std::string> sep_str;
    if (!sep.is_undefined() && !sep.is_none()) sep_str = string_arg(sep, "split() separator");
    auto parts = name == "split" ? text::split(s, sep_str ? &*sep_str : nullptr, maxsplit)
                                 : text::rsplit(s, sep_str ? &*sep_str : nullptr, maxsplit);
    state.count_work(parts.size());
    return string_list(std::move(parts));
  }
  if (name == "splitlines") {
    args.expect_at_most(name, 0);
    std::vector<std::string> parts;
    for (auto line : text::split_lines(s)) parts.emplace_back(line);
    state.count_work(parts.size());
    return string_list(std::move(parts));
  }
  if (name == "startswith" || name == "endswith") {
    args.expect_at_most(name, 1);
    if (args.positional.empty()) fault("{}() takes one argument", name);
    return Value(affix_match(s, args.positional[0], name == "startswith"));
  }
  if (name == "replace") {
    args.expect_at_most(name, 3, {"count"});
    if (args.positional.size() < 2) fault("replace() takes at least 2 arguments");
    return Value(text::replace(s, string_arg(args.positional[0], "replace() old"),
                               string_arg(args.positional[1], "replace() new"),
                               int_arg(args.get(2, "count", Value(-1)), "replace() count"), state.max_bytes()));
  }
  if (name == "title") return Value(title_case(s));
  if (name == "capitalize") {
    std::string out = text::to_lower(s);
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return Value(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    args.expect_at_most(name, 1);
    if (args.positional.empty()) fault("{}() takes one argument", name);
    const std::string needle = string_arg(args.positional[0], std::string(name) + "() argument");
    if (name == "count") {
      if (needle.empty()) return Value(static_cast<int64_t>(text::count_code_points(s) + 1));
      int64_t n = 0;
      for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
      return Value(n);
    }
    const size_t at = name == "rfind" ? s.rfind(needle) : s.find(needle);
    if (at == std::string::npos) {
      if (name == "index") fault("substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(text::count_code_points(std::string_view(s).substr(0, at))));
  }
  if (name == "join") {
    args.expect_at_most(name, 1);
    if (args.positional.empty()) fault("join() takes one argument");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(args.positional[0], "join()")) {
      if (!first) out += s;
      first = false;
      out += string_arg(item, "join() item");
      state.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "isdigit") return Value(all_chars(s, [](unsigned char c) { return std::isdigit(c) != 0; }));
  if (name == "isalpha") return Value(all_chars(s, [](unsigned char c) { return std::isalpha(c) != 0; }));
  if (name == "isalnum") return Value(all_chars(s, [](unsigned char c) { return std::isalnum(c) != 0; }));
  if (name == "isspace")
    return Value(all_chars(s, [](unsigned char c) { return text::is_space(static_cast<char>(c)); }));
  if (name == "islower" || name == "isupper") {
    const bool lower = name == "islower";
    bool cased = false;
    for (char c : s) {
      if (std::isalpha(static_cast<unsigned char>(c))) {
        cased = true;
        if ((std::islower(static_cast<unsigned char>(c)) != 0) != lower) return Value(false);
      }
    }
    return Value(cased);
  }
  fault("internal error: no string method '{}'", name);
}

Value call_dict_method(RenderState& state, const Dict& d, std::string_view name, const CallArgs& args) {
  if (name == "get") {
    args.expect_at_most("get()", 2);
    if (args.positional.empty()) fault("get() takes a key");
    const Value& key = args.positional[0];
    const Value* found = key.is_string() ? d.find(key.as_string()) : nullptr;
    if (found != nullptr) return *found;
    return args.positional.size() > 1 ? args.positional[1] : Value::none();
  }
  args.expect_at_most(name, 0);
  state.count_work(d.size());
  std::vector<Value> out;
  out.reserve(d.size());
  for (const auto& [k, v] : d.entries()) {
    if (name == "keys") {
      out.emplace_back(k);
    } else if (name == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::tuple({Value(k), v}));
    }
  }
  return Value::list(std::move(out));
}

bool is_string_method(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "strip",      "lstrip",   "rstrip",  "upper",   "lower",      "split",   "rsplit",  "splitlines",
      "startswith", "endswith", "replace", "title",   "capitalize", "find",    "rfind",   "count",
      "index",      "join",     "isdigit", "isalpha", "isalnum",    "isspace", "islower", "isupper"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

bool is_dict_method(std::string_view name) {
  return name == "get" || name == "items" || name == "keys" || name == "values";
}

Value global_range(RenderState& state, const CallArgs& args) {
  args.expect_at_most("range()", 3);
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  if (args.positional.empty()) fault("range() takes 1 to 3 integers");
  if (args.positional.size() == 1) {
    stop = int_arg(args.positional[0], "range() stop");
  } else {
    start = int_arg(args.positional[0], "range() start");
    stop = int_arg(args.positional[1], "range() stop");
    if (args.positional.size() == 3) step = int_arg(args.positional[2], "range() step");
  }
  if (step == 0) fault("range() step must not be zero");
  // Count before building, so range(10**12) fails at once instead of exhausting memory.
  const long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  const long double count = span <= 0 ? 0 : std::ceil(span / std::abs(static_cast<long double>(step)));
  if (count > static_cast<long double>(state.limits().max_loop_iterations)) {
    fault("range() of {} items exceeds the {} loop iterations allowed", static_cast<double>(count),
          state.limits().max_loop_iterations);
  }
  state.count_work(static_cast<uint64_t>(count));
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    items.emplace_back(i);
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::list(std::move(items));
}

Dict dict_from_args(const CallArgs& args, std::string_view what) {
  Dict d;
  if (args.positional.size() > 1) fault("{} takes at most one positional argument", what);
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (init.is_dict()) {
      for (const auto& [k, v] : init.as_dict().entries()) d.set(k, v);
    } else if (init.is_list()) {
      for (const Value& pair : init.as_list()) {
        if (!pair.is_list() || pair.as_list().size() != 2 || !pair.as_list()[0].is_string()) {
          fault("{} takes a dict or a list of (string, value) pairs", what);
        }
        d.set(pair.as_list()[0].as_string(), pair.as_list()[1]);
      }
    } else {
      fault("{} takes a dict or a list of pairs, got {}", what, init.type_name());
    }
  }
  for (const auto& [k, v] : args.named) d.set(k, v);
  return d;
}

std::string strftime_now(const std::string& format) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return "";
  std::string buf(256 + format.size() * 8, '\0');
  const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
  if (n == 0) fault("strftime_now(): cannot format '{}'", format);
  buf.resize(n);
  return buf;
}

}  // namespace

Value find_method(RenderState& state, const Value& receiver, std::string_view name) {
  if (receiver.is_string() && is_string_method(name)) {
    return Value::callable(std::string(name), [&state, receiver, method = std::string(name)](const CallArgs& args) {
      return call_string_method(state, receiver.as_string(), method, args);
    });
  }
  if (receiver.is_dict() && is_dict_method(name)) {
    return Value::callable(std::string(name), [&state, receiver, method = std::string(name)](const CallArgs& args) {
      return call_dict_method(state, receiver.as_dict(), method, args);
    });
  }
  return Value();
}

void add_globals(RenderState& state, Scope& scope) {
  scope.set("range", Value::callable("range", [&state](const CallArgs& args) { return global_range(state, args); }));
  scope.set("namespace", Value::callable("namespace", [&state](const CallArgs& args) {
              return state.make_namespace(dict_from_args(args, "namespace()"));
            }));
  scope.set("dict",
            Value::callable("dict", [](const CallArgs& args) { return Value::dict(dict_from_args(args, "dict()")); }));
  scope.set("raise_exception", Value::callable("raise_exception", [&state](const CallArgs& args) -> Value {
              const Value message = args.get(0, "message", Value("raise_exception() was called"));
              throw TemplateRaised(message.str(state.max_bytes()));
            }));
  scope.set("strftime_now", Value::callable("strftime_now", [](const CallArgs& args) {
              args.expect_at_most("strftime_now()", 1);
              return Value(strftime_now(string_arg(args.get(0, "format", Value("")), "strftime_now() format")));
            }));
}

Value get_attribute(RenderState& state, const Value& target, std::string_view name) {
  switch (target.type()) {
    case Value::Type::Dict: {
      // Python's getattr comes first for `a.b`: d.items is the method even if d has an "items" key.
      if (is_dict_method(name)) return find_method(state, target, name);
      const Value* v = target.as_dict().find(name);
      return v != nullptr ? *v : Value();
    }
    case Value::Type::Namespace: {
      const Value* v = target.as_namespace().find(name);
      return v != nullptr ? *v : Value();
    }
    case Value::Type::String:
      return find_method(state, target, name);
    default:
      return Value();  // like Jinja's default Undefined: missing attributes are undefined
  }
}

Value get_item(RenderState& state, const Value& target, const Value& key) {
  switch (target.type()) {
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      if (!key.is_string()) return Value();
      const Dict& d = target.is_dict() ? target.as_dict() : target.as_namespace();
      if (const Value* v = d.find(key.as_string())) return *v;
      return target.is_dict() ? find_method(state, target, key.as_string()) : Value();
    }
    case Value::Type::List: {
      if (!key.is_int() && !key.is_bool()) return Value();
      const auto& items = target.as_list();
      int64_t i = key.as_int();
      if (i < 0) i += static_cast<int64_t>(items.size());
      if (i < 0 || i >= static_cast<int64_t>(items.size())) return Value();
      return items[static_cast<size_t>(i)];
    }
    case Value::Type::String: {
      if (key.is_string()) return find_method(state, target, key.as_string());
      if (!key.is_int() && !key.is_bool()) return Value();
      const auto cps = text::code_points(target.as_string());
      int64_t i = key.as_int();
      if (i < 0) i += static_cast<int64_t>(cps.size());
      if (i < 0 || i >= static_cast<int64_t>(cps.size())) return Value();
      return Value(cps[static_cast<size_t>(i)]);
    }
    default:
      return Value();
  }
}

std::vector<Value> iterate(const Value& v, std::string_view what) {
  switch (v.type()) {
    case Value::Type::List:
      return v.as_list();
    case Value::Type::Dict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().size());
      for (const auto& [k, item] : v.as_dict().entries()) keys.emplace_back(k);
      return keys;
    }
    case Value::Type::String: {
      std::vector<Value> chars;
      for (std::string_view cp : text::code_points(v.as_string())) chars.emplace_back(cp);
      return chars;
    }
    case Value::Type::Undefined:
      return {};
    default:
      fault("{}: a '{}' value is not iterable", what, v.type_name());
  }
}

}  // namespace px::jinja
