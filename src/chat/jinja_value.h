#pragma once
// Values of the Jinja subset used by LLM chat templates. Semantics follow Python's Jinja2
// (what Hugging Face renders chat templates with): Python truthiness, str()/repr() rendering,
// int/float arithmetic, ordered dicts. Lists and dicts are immutable once built and shared by
// pointer, so copying a Value is cheap. Namespaces (namespace()) are the one mutable container.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "chat/jinja_error.h"

namespace px::jinja {

// Containers deeper than this are refused, so that destroying, printing or comparing a value
// can never exhaust the stack (a hostile template could otherwise nest `[x]` a million times).
inline constexpr int kMaxValueDepth = 200;

class Value;
struct CallArgs;

// Work done while rendering, charged by every string a render builds and every loop iteration:
// the guard against templates that would otherwise run for hours (a loop that keeps doubling a
// string, or comparing two large ones a million times). The renderer installs one per thread.
class WorkBudget {
 public:
  WorkBudget(size_t max_string_bytes, uint64_t max_text_bytes, uint64_t max_iterations, double max_seconds);
  void charge_text(size_t bytes);      // a string of `bytes` was built
  void charge_iterations(uint64_t n);  // n loop iterations, list items or calls
  size_t max_string_bytes() const { return max_string_bytes_; }

  // The budget of the render running on this thread, or null outside a render.
  static WorkBudget* current() { return current_; }
  class Install {
   public:
    explicit Install(WorkBudget* b) : saved_(current_) { current_ = b; }
    ~Install() { current_ = saved_; }

   private:
    WorkBudget* saved_;
  };

 private:
  void check_clock();
  size_t max_string_bytes_;
  uint64_t max_text_bytes_;
  uint64_t max_iterations_;
  double max_seconds_;
  uint64_t text_bytes_ = 0;
  uint64_t iterations_ = 0;
  uint64_t ticks_ = 0;
  int64_t start_ns_;
  static thread_local WorkBudget* current_;
};

struct List {
  std::vector<Value> items;
  int depth = 1;
  bool is_tuple = false;  // only changes how it prints: (1, 2) rather than [1, 2]
};

// Insertion-ordered string-keyed map (Python dicts keep insertion order; JSON keys are strings).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
  // Defined below Value: libstdc++'s pair needs Value complete (clang insists, GCC does not).
  size_t size() const;
  bool empty() const;
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  void clear();
  int depth() const { return depth_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  // Built only for large dicts; small ones are scanned, which is faster and allocates less.
  std::unordered_map<std::string, size_t> index_;
  int depth_ = 1;
};

struct Callable {
  std::string name;
  std::function<Value(const CallArgs&)> fn;
};

struct UndefinedTag {};
struct NoneTag {};

class Value {
 public:
  // Order matches the variant's alternatives.
  enum class Type : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

  Value() = default;  // undefined
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  // Strings are shared, not copied, when values are; building one is charged to the budget.
  Value(std::string s);
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  static Value none() { return Value(NoneTag{}); }
  static Value undefined() { return Value(); }
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict d);
  static Value ns(std::shared_ptr<Dict> d) { return Value(Namespace{std::move(d)}); }
  static Value callable(std::string name, std::function<Value(const CallArgs&)> fn);

  // Converts JSON (the render context) into values. Objects keep the key order of the JSON
  // object: nlohmann::json sorts keys, ordered_json keeps the order they were written in (as
  // Python does, which matters for `tools | tojson`).
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_undefined() const { return type() == Type::Undefined; }
  bool is_none() const { return type() == Type::None; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_float() const { return type() == Type::Float; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return type() == Type::String; }
  bool is_list() const { return type() == Type::List; }
  bool is_dict() const { return type() == Type::Dict; }
  bool is_namespace() const { return type() == Type::Namespace; }
  bool is_callable() const { return type() == Type::Callable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;    // Int or Bool
  double as_double() const;  // Int, Float or Bool
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(v_); }
  const std::vector<Value>& as_list() const { return std::get<std::shared_ptr<const List>>(v_)->items; }
  bool is_tuple() const { return is_list() && std::get<std::shared_ptr<const List>>(v_)->is_tuple; }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Dict& as_namespace() const { return *std::get<Namespace>(v_).dict; }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  // Nesting depth of containers (0 for scalars); namespaces count as 1 (their contents are
  // flattened when the render ends, see RenderState).
  int depth() const;

  const char* type_name() const;  // Python-ish type name for error messages
  bool truthy() const;

  // Python str(): strings as they are, everything else as repr(). `max_bytes` bounds the result.
  std::string str(size_t max_bytes = kUnbounded) const;
  std::string repr(size_t max_bytes = kUnbounded) const;

  static constexpr size_t kUnbounded = static_cast<size_t>(-1);

 private:
  struct Namespace {
    std::shared_ptr<Dict> dict;
  };
  static Value make_list(std::vector<Value> items, bool is_tuple);
  explicit Value(NoneTag) : v_(NoneTag{}) {}
  explicit Value(Namespace n) : v_(std::move(n)) {}

  std::variant<UndefinedTag, NoneTag, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const List>, std::shared_ptr<const Dict>, Namespace, std::shared_ptr<const Callable>>
      v_;
};

inline size_t Dict::size() const { return entries_.size(); }
inline bool Dict::empty() const { return entries_.empty(); }

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;

  // The argument at `index` or named `name`, or `fallback` when neither was given.
  Value get(size_t index, std::string_view name, Value fallback = Value()) const;
  const Value* find_named(std::string_view name) const;
  // Faults when more positional arguments, or keyword arguments other than `allowed`, came.
  void expect_at_most(std::string_view what, size_t max_positional,
                      std::initializer_list<std::string_view> allowed = {}) const;
};

// Python semantics: 1 == 1.0 == True; lists and dicts compare element-wise; namespaces and
// callables by identity.
bool equals(const Value& a, const Value& b);
// Total order for <, sort, min, max: numbers, strings (by code point), lists (lexicographic).
// Other or mixed types fault. `case_insensitive` lowers ASCII letters of strings first.
int compare(const Value& a, const Value& b, bool case_insensitive = false);

struct JsonFormat {
  int indent = -1;                            // < 0: single line
  std::optional<std::string> item_separator;  // default ", " (or "," when indenting), as json.dumps
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
// JSON text as Python's json.dumps writes it (transformers' tojson filter).
std::string to_json_text(const Value& v, const JsonFormat& format, size_t max_bytes = Value::kUnbounded);

// Python repr() of a float: shortest round-trip digits, "1.0", "1e-05", "inf", "nan".
std::string format_python_float(double d);
// Python repr() of a string: single quotes unless the text holds ' and no ".
std::string python_string_repr(std::string_view s);

}  // namespace px::jinja
