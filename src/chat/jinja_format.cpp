// Python's printf-style string formatting: "%s and %5.2f" % (a, b), and the `format` filter.
#include <cmath>
#include <cstdio>

#include "chat/jinja_eval.h"
#include "chat/jinja_ops.h"
#include "chat/jinja_text.h"

namespace px::jinja {

namespace {

struct Spec {
  std::string flags;
  int width = -1;
  int precision = -1;
  char type = 's';
};

std::string pad(std::string s, const Spec& spec) {
  const auto len = static_cast<int>(text::count_code_points(s));
  if (spec.width <= len) return s;
  const auto fill = static_cast<size_t>(spec.width - len);
  if (spec.flags.find('-') != std::string::npos) return s + std::string(fill, ' ');
  return std::string(fill, ' ') + s;
}

std::string format_number(const Spec& spec, const Value& v) {
  std::string c_spec = "%" + spec.flags;
  if (spec.width >= 0) c_spec += std::to_string(std::min(spec.width, 4096));
  const char t = spec.type == 'i' || spec.type == 'u' ? 'd' : spec.type;
  char buf[4200];
  if (t == 'd' || t == 'x' || t == 'X' || t == 'o') {
    if (!v.is_number()) fault("%{} format: a number is required, not {}", spec.type, v.type_name());
    double d = v.as_double();
    if (v.is_float() && (!std::isfinite(d) || std::fabs(d) >= 9.2e18))
      fault("%{} format: value out of range", spec.type);
    const long long i = v.is_float() ? static_cast<long long>(d) : static_cast<long long>(v.as_int());
    c_spec += std::string("ll") + t;
    std::snprintf(buf, sizeof(buf), c_spec.c_str(), i);
    return buf;
  }
  if (!v.is_number()) fault("%{} format: a real number is required, not {}", spec.type, v.type_name());
  if (spec.precision >= 0) c_spec += "." + std::to_string(std::min(spec.precision, 100));
  c_spec += t;
  std::snprintf(buf, sizeof(buf), c_spec.c_str(), v.as_double());
  return buf;
}

}  // namespace

std::string percent_format(RenderState& state, std::string_view format, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.as_list();
  } else if (args.is_dict()) {
    mapping = &args.as_dict();
    positional = {args};
  } else {
    positional = {args};
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) fault("incomplete format: '%' at the end");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    const Value* value = nullptr;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string_view::npos) fault("incomplete format key");
      if (mapping == nullptr) fault("format requires a mapping");
      value = mapping->find(format.substr(i + 1, close - i - 1));
      if (value == nullptr) fault("format key '{}' not found", format.substr(i + 1, close - i - 1));
      i = close + 1;
    }
    Spec spec;
    while (i < format.size() && std::string_view("-+ 0#").find(format[i]) != std::string_view::npos)
      spec.flags += format[i++];
    auto read_int = [&]() {
      int n = 0;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9')
        n = std::min(n * 10 + (format[i++] - '0'), 100000);
      return n;
    };
    if (i < format.size() && format[i] >= '0' && format[i] <= '9') spec.width = read_int();
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = read_int();
    }
    if (i >= format.size()) fault("incomplete format");
    spec.type = format[i];
    if (value == nullptr) {
      if (next >= positional.size()) fault("not enough arguments for format string");
      value = &positional[next++];
    }
    std::string piece;
    switch (spec.type) {
      case 's':
        piece = value->str(state.max_bytes());
        break;
      case 'r':
        piece = value->repr(state.max_bytes());
        break;
      case 'c':
        if (value->is_string() && text::count_code_points(value->as_string()) == 1) {
          piece = value->as_string();
        } else if (value->is_int() && value->as_int() >= 0 && value->as_int() <= 0x10FFFF) {
          text::append_utf8(piece, static_cast<uint32_t>(value->as_int()));
        } else {
          fault("%c requires an int or a single character");
        }
        break;
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        out += format_number(spec, *value);
        state.check_size(out.size());
        continue;
      default:
        fault("unsupported format character '{}'", spec.type);
    }
    if ((spec.type == 's' || spec.type == 'r') && spec.precision >= 0) {
      const auto cps = text::code_points(piece);
      if (static_cast<size_t>(spec.precision) < cps.size()) {
        std::string cut;
        for (size_t k = 0; k < static_cast<size_t>(spec.precision); ++k) cut += cps[k];
        piece = std::move(cut);
      }
    }
    out += pad(std::move(piece), spec);
    state.check_size(out.size());
  }
  if (mapping == nullptr && next < positional.size()) fault("not all arguments converted during string formatting");
  return out;
}

}  // namespace px::jinja
