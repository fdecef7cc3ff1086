// Errors name the construct, line and column; hostile templates hit limits and fail cleanly
// instead of hanging, exhausting memory or overflowing the stack.
#include <gtest/gtest.h>

#include <string>

#include "chat/jinja.h"
#include "unit/jinja_test_util.h"

namespace px::jinja {
namespace {

using test::json;
using test::render;
using test::sample;

// The message of the TemplateError that rendering `source` throws ("" if none is thrown).
std::string error_of(std::string_view source, const json& context = json::object(), RenderLimits limits = {}) {
  try {
    render(source, context, limits);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

TEST(JinjaErrors, UnknownFilterNamesLineAndColumn) {
  EXPECT_EQ(error_of("a\nb\n{{ x | foo }}"), "template line 3, column 8: unknown filter 'foo'");
}

TEST(JinjaErrors, UnknownTestAndTag) {
  EXPECT_EQ(error_of("{{ x is shiny }}"), "template line 1, column 9: unknown test 'shiny'");
  EXPECT_EQ(error_of("{% frobnicate %}"), "template line 1, column 4: unknown tag 'frobnicate'");
  EXPECT_TRUE(contains(error_of("{% include 'x.html' %}"), "'include' tag is not supported"))
      << error_of("{% include 'x' %}");
}

TEST(JinjaErrors, UnknownFilterInAnIfFailsOnlyWhenItRuns) {
  EXPECT_EQ(render("{% if false %}{{ x | from_json }}{% endif %}ok"), "ok");
  EXPECT_EQ(render("{{ (x | nope) if false else 'ok' }}"), "ok");
  EXPECT_EQ(error_of("{% if true %}{{ x | from_json }}{% endif %}"),
            "template line 1, column 21: unknown filter 'from_json'");
  EXPECT_TRUE(contains(error_of("{% for i in [1] %}{{ i | from_json }}{% endfor %}"), "unknown filter 'from_json'"));
}

TEST(JinjaErrors, UnbalancedBlocks) {
  EXPECT_EQ(error_of("{% for x in y %}\nbody"),
            "template line 2, column 5: unexpected end of template, expected 'endfor'");
  EXPECT_EQ(error_of("{% if x %}a{% endfor %}"),
            "template line 1, column 12: unexpected 'endfor', expected 'elif' or 'else' or 'endif'");
  EXPECT_TRUE(contains(error_of("{% endif %}"), "unexpected 'endif'"));
  EXPECT_TRUE(contains(error_of("{% break %}"), "'break' outside of a for loop"));
}

TEST(JinjaErrors, SyntaxErrorsSayWhatWasExpected) {
  EXPECT_EQ(error_of("{{ 1 + }}"), "template line 1, column 8: expected an expression, found '}}'");
  EXPECT_EQ(error_of("{% for x y %}{% endfor %}"), "template line 1, column 10: expected 'in' in for loop, found 'y'");
  EXPECT_EQ(error_of("{% set = 1 %}"), "template line 1, column 8: expected a variable name, found '='");
  EXPECT_TRUE(contains(error_of("{{ f(a=1, 2) }}"), "positional argument follows keyword argument"));
}

TEST(JinjaErrors, RuntimeErrorsNameTheExpression) {
  EXPECT_EQ(error_of("{{ 1 + 'a' }}"), "template line 1, column 6: unsupported operand types for +: 'int' and 'str'");
  EXPECT_EQ(error_of("\n  {{ 1 // 0 }}"), "template line 2, column 8: integer division or modulo by zero");
  EXPECT_EQ(error_of("{{ nothing() }}"), "template line 1, column 11: 'nothing' is undefined");
  EXPECT_EQ(error_of("{{ 'a'.nomethod() }}"), "template line 1, column 16: 'str' has no method 'nomethod'");
  EXPECT_EQ(error_of("{{ 1 < 'a' }}"), "template line 1, column 4: '<' not supported between 'int' and 'str'");
  EXPECT_EQ(error_of("{{ 9223372036854775807 + 1 }}"), "template line 1, column 24: integer overflow");
}

TEST(JinjaErrors, SetAttributeNeedsANamespace) {
  EXPECT_TRUE(
      contains(error_of("{% set d = {} %}{% set d.x = 1 %}"), "only namespace() objects take attribute assignment"));
}

TEST(JinjaErrors, UnpackingChecksTheCount) {
  EXPECT_TRUE(contains(error_of("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), "cannot unpack 3 values into 2 names"));
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  try {
    render("{% if true %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}");
    FAIL() << "expected TemplateRaised";
  } catch (const TemplateRaised& e) {
    EXPECT_STREQ(e.what(), "Conversation roles must alternate");
  }
  EXPECT_THROW(render("{{ raise_exception('x') }}"), px::Error);
}

TEST(JinjaErrors, ContextMustBeAnObject) {
  EXPECT_THROW(Template::parse("x").render(json::array()), TemplateError);
  EXPECT_EQ(Template::parse("x{{ y }}").render(json()), "x");
}

TEST(JinjaLimits, HugeRangeFailsAtOnce) {
  EXPECT_TRUE(contains(error_of("{% for i in range(10000000000) %}x{% endfor %}"), "loop iterations"));
}

TEST(JinjaLimits, NestedLoopsStopAtTheIterationBudget) {
  RenderLimits limits;
  limits.max_loop_iterations = 20000;
  const std::string e = error_of(
      "{% for a in range(100) %}{% for b in range(100) %}{% for c in range(100) %}{% endfor %}"
      "{% endfor %}{% endfor %}",
      json::object(), limits);
  EXPECT_TRUE(contains(e, "exceeds 20000 loop iterations")) << e;
}

TEST(JinjaLimits, OutputIsCapped) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  EXPECT_TRUE(contains(error_of("{% for i in range(200) %}xxxxxxxxxx{% endfor %}", json::object(), limits),
                       "output exceeds 1000 bytes"));
  EXPECT_TRUE(contains(error_of("{{ 'x' * 100000000000 }}"), "exceeds"));
  EXPECT_TRUE(contains(error_of("{{ [1] * 100000000000 }}"), "loop iterations"));
}

TEST(JinjaLimits, StringDoublingIsCapped) {
  const std::string e =
      error_of("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
  EXPECT_TRUE(contains(e, "exceeds")) << e;
}

TEST(JinjaLimits, TextBuiltInAllIsCapped) {
  RenderLimits limits;
  limits.max_text_bytes = 1000000;
  const std::string e =
      error_of("{% for i in range(1000) %}{% set s = 'x' * 10000 %}{% endfor %}", json::object(), limits);
  EXPECT_TRUE(contains(e, "more than 1000000 bytes of text")) << e;
}

TEST(JinjaLimits, WallClockDeadlineStopsSlowTemplates) {
  RenderLimits limits;
  limits.max_seconds = 0.2;
  // A million comparisons of two 1 MB strings: well within the iteration budget, far too slow.
  const std::string e = error_of(
      "{% set a = 'x' * 1000000 %}{% set b = 'x' * 1000000 %}{% for i in range(1000000) %}"
      "{% if a == b %}{% endif %}{% endfor %}",
      json::object(), limits);
  EXPECT_TRUE(contains(e, "took longer than 0.2 seconds")) << e;
}

TEST(JinjaLimits, ExponentialMacroCallsCountAsWork) {
  RenderLimits limits;
  limits.max_loop_iterations = 10000;
  const std::string e =
      error_of("{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
               json::object(), limits);
  EXPECT_TRUE(contains(e, "exceeds 10000 loop iterations")) << e;
}

TEST(JinjaLimits, UnboundedRecursionStops) {
  const std::string e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_TRUE(contains(e, "macro calls nested deeper than 64")) << e;
}

TEST(JinjaLimits, DeeplyNestedSourceIsRefused) {
  const std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_TRUE(contains(error_of(parens), "nested deeper")) << error_of(parens);
  EXPECT_TRUE(contains(error_of("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}"), "nested deeper"));
  EXPECT_TRUE(contains(error_of("{{ " + std::string(5000, '[') + " }}"), "unexpected '}', expected ']'"));
  EXPECT_TRUE(contains(error_of("{{ " + std::string(100000, '-') + "1 }}"), "nested deeper"));
  std::string nots;
  for (int i = 0; i < 20000; ++i) nots += "not ";
  EXPECT_TRUE(contains(error_of("{{ " + nots + "1 }}"), "nested deeper"));
  std::string sum = "{{ 1";
  for (int i = 0; i < 50000; ++i) sum += " + 1";
  EXPECT_TRUE(contains(error_of(sum + " }}"), "nested deeper"));
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_TRUE(contains(error_of(ifs), "nested deeper"));
}

TEST(JinjaLimits, ModerateNestingStillWorks) {
  std::string sum = "{{ 0";
  for (int i = 0; i < 200; ++i) sum += " + 1";
  EXPECT_EQ(render(sum + " }}"), "200");
  std::string ifs;
  std::string ends;
  for (int i = 0; i < 40; ++i) {
    ifs += "{% if true %}";
    ends += "{% endif %}";
  }
  EXPECT_EQ(render(ifs + "deep" + ends), "deep");
}

TEST(JinjaLimits, DeeplyNestedValuesAreRefused) {
  const std::string e =
      error_of("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}");
  EXPECT_TRUE(contains(e, "nested deeper")) << e;
  json deep = json::array();
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  EXPECT_THROW(render("{{ x }}", json{{"x", deep}}), TemplateError);
}

TEST(JinjaLimits, NamespaceCyclesNeitherHangNorLeakIntoErrors) {
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}"), "True");
  EXPECT_TRUE(contains(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"), "nested deeper"));
}

}  // namespace
}  // namespace px::jinja
