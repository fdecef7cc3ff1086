#pragma once
// Built-in filters, tests, methods of values (str.strip, dict.get, ...) and globals (range,
// namespace, raise_exception, strftime_now) of the Jinja subset.
#include <string_view>

#include "chat/jinja_ast.h"

namespace px::jinja {

class Scope;

// nullptr when there is no such filter / test.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// The method `name` of `receiver` bound to it (e.g. "abc".upper), or undefined if it has none.
Value find_method(RenderState& state, const Value& receiver, std::string_view name);

// Puts range, namespace, dict, raise_exception and strftime_now into `scope`.
void add_globals(RenderState& state, Scope& scope);

// Attribute lookup shared by `a.b`, map(attribute=) and friends: a key of a dict or namespace,
// an index into a list (for dotted paths like "0.name"), or a method.
Value get_attribute(RenderState& state, const Value& target, std::string_view name);
// Item lookup `a[b]`: keys, list and string indices (negative from the end), then methods.
Value get_item(RenderState& state, const Value& target, const Value& key);

// The items a for loop visits: list items, dict keys, string code points; undefined gives none.
std::vector<Value> iterate(const Value& v, std::string_view what);

}  // namespace px::jinja
