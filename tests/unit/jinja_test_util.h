#pragma once
// Shared by the Jinja tests: render a template source with a JSON context.
#include "chat/jinja.h"

namespace px::jinja::test {

using json = nlohmann::ordered_json;

inline std::string render(std::string_view source, const json& context = json::object(), RenderLimits limits = {}) {
  TemplateOptions options;
  options.limits = limits;
  return Template::parse(source, options).render(context);
}

// A context with a dict, a list and a list of dicts, for expression and filter tests.
inline json sample() {
  return json::parse(R"({"d": {"a": 1, "b": "two", "c": [1, 2]}, "l": [1, 2, 3],
                         "users": [{"n": "a"}, {"n": "b", "x": 1}]})");
}

}  // namespace px::jinja::test
