// Statements: for (loop variables, else, unpacking, inline filter, break/continue), if/elif/else,
// set (names, tuples, namespaces, blocks), macros and call blocks, filter blocks, with.
// Expected strings are what Python's Jinja2 renders.
#include <gtest/gtest.h>

#include "chat/jinja.h"
#include "unit/jinja_test_util.h"

namespace px::jinja {
namespace {

using test::json;
using test::render;
using test::sample;

TEST(JinjaFor, LoopVariables) {
  EXPECT_EQ(render("{% for x in [7, 8, 9] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }}/{% endfor %}"),
            "1032TrueFalse3/2121FalseFalse3/3210FalseTrue3/");
}

TEST(JinjaFor, PrevNextItemAndCycle) {
  EXPECT_EQ(
      render(
          "{% for x in [1, 2, 3] %}{{ loop.previtem }}>{{ x }}<{{ loop.nextitem }};{{ loop.cycle('o', 'e') }} {% endfor %}"),
      ">1<2;o 1>2<3;e 2>3<;o ");
}

TEST(JinjaFor, ElseRunsOnlyWhenNothingIterated) {
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in [1] %}a{% else %}empty{% endfor %}"),
            "empty|a");
  EXPECT_EQ(render("{% for x in missing %}a{% else %}none{% endfor %}"), "none");
}

TEST(JinjaFor, UnpacksPairs) {
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(
      render(
          "{% for a, b in [[1,2],[3,4]] %}{{ a }}{{ b }}{% endfor %}{% for (a, b) in [(5,6)] %}{{ a }}{{ b }}{% endfor %}"),
      "123456");
}

TEST(JinjaFor, InlineFilterCountsOnlyKeptItems) {
  EXPECT_EQ(render("{% for x in [1, 2, 3] if x != 2 %}{{ x }}{{ loop.index }}{{ loop.last }} {% endfor %}"),
            "11False 32True ");
}

TEST(JinjaFor, IteratesDictKeysAndStringCharacters) {
  EXPECT_EQ(
      render("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% for c in 'h\xC3\xA9y' %}{{ c }}.{% endfor %}"),
      "ba|h.\xC3\xA9.y.");
}

TEST(JinjaFor, BreakAndContinue) {
  EXPECT_EQ(
      render(
          "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
      "13");
}

TEST(JinjaFor, NestedLoopsSeeTheirOwnLoop) {
  EXPECT_EQ(
      render("{% for a in [1, 2] %}{% for b in [1, 2, 3] %}{{ loop.index }}{% endfor %}:{{ loop.index }} {% endfor %}"),
      "123:1 123:2 ");
}

TEST(JinjaFor, ReversedSliceAndRange) {
  EXPECT_EQ(
      render("{% for m in [1, 2, 3][::-1] %}{{ m }}{% endfor %}|{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}|"
             "{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}|{{ range(3)|list }}"),
      "321|147|531|[0, 1, 2]");
}

TEST(JinjaIf, ElifAndElseChooseTheFirstTrueBranch) {
  const char* t = "{% if x == 1 %}a{% elif x == 2 %}b{% elif x == 3 %}c{% else %}d{% endif %}";
  EXPECT_EQ(render(t, json{{"x", 1}}), "a");
  EXPECT_EQ(render(t, json{{"x", 2}}), "b");
  EXPECT_EQ(render(t, json{{"x", 3}}), "c");
  EXPECT_EQ(render(t, json{{"x", 4}}), "d");
}

TEST(JinjaIf, TruthinessFollowsPython) {
  EXPECT_EQ(render("{% for v in [0, 1, '', 'a', [], [0], {}, none, 0.0] %}{{ 'T' if v else 'F' }}{% endfor %}"),
            "FTFTFTFFF");
  EXPECT_EQ(render("{% if missing %}T{% else %}F{% endif %}"), "F");
}

TEST(JinjaSet, AssignsNamesAndTuples) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t = (1, 2) %}{{ t }}"), "12|(1, 2)");
}

TEST(JinjaSet, BlockSetCapturesRenderedText) {
  EXPECT_EQ(render("{% set s %}inner {{ 5 }}{% endset %}[{{ s }}]"), "[inner 5]");
}

TEST(JinjaSet, AssignmentInsideALoopDoesNotLeakOut) {
  EXPECT_EQ(render("{% set a = 1 %}{% for x in [1, 2] %}{% set a = a + x %}{{ a }}{% endfor %}|{{ a }}"), "23|1");
}

TEST(JinjaSet, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(
      render("{% set ns = namespace(a=1) %}{% for x in [1, 2, 3] %}{% set ns.a = ns.a + x %}{% endfor %}{{ ns.a }}"),
      "7");
  EXPECT_EQ(render("{% set ns = namespace(found=false) %}{% for r in ['user', 'system'] %}{% if r == 'system' %}"
                   "{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}"),
            "True");
}

TEST(JinjaSet, AssignmentInsideIfIsVisibleAfterIt) {
  EXPECT_EQ(render("{% if true %}{% set x = 'in' %}{% endif %}{{ x }}"), "in");
}

TEST(JinjaMacro, DefaultsAndKeywordArguments) {
  const std::string m = "{% macro m(a, b=2, c='x') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}";
  EXPECT_EQ(render(m + "{{ m(1) }}|{{ m(1, 3) }}|{{ m(1, c='z') }}|{{ m(b=5, a=0) }}"), "1-2-x|1-3-x|1-2-z|0-5-x");
}

TEST(JinjaMacro, MissingArgumentsAreUndefinedAndExtrasGoToVarargs) {
  EXPECT_EQ(
      render(
          "{% macro m(a, b) %}[{{ a }}][{{ b }}]{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, k=4) }}"),
      "[1][](){}|[1][2](3,){'k': 4}");
}

TEST(JinjaMacro, RecursionWorks) {
  EXPECT_EQ(render("{% macro down(n) %}{{ n }}{% if n > 0 %}{{ down(n - 1) }}{% endif %}{% endmacro %}{{ down(3) }}"),
            "3210");
}

TEST(JinjaMacro, CallBlockPassesCaller) {
  EXPECT_EQ(render("{% macro wrap(t) %}<{{ caller() }}:{{ t }}>{% endmacro %}{% call wrap('T') %}body{% endcall %}"),
            "<body:T>");
  EXPECT_EQ(render("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
                   "{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}"),
            "[1][2]");
}

TEST(JinjaBlocks, FilterBlockAppliesFiltersToItsBody) {
  EXPECT_EQ(
      render(
          "{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% filter trim|replace('a', 'b') %}  aa  {% endfilter %}"),
      "HELLO X|bb");
}

TEST(JinjaBlocks, WithOpensAScope) {
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
}

TEST(JinjaBlocks, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("{% generation %}assistant text{% endgeneration %}"), "assistant text");
}

}  // namespace
}  // namespace px::jinja
