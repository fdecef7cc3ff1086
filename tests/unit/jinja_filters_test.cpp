// Filters and tests (`x | f`, `x is t`). Expected strings are what Python's Jinja2 renders with
// transformers' tojson.
#include <gtest/gtest.h>

#include "chat/jinja.h"
#include "unit/jinja_test_util.h"

namespace px::jinja {
namespace {

using test::json;
using test::render;
using test::sample;

TEST(JinjaFilters, StringCase) {
  EXPECT_EQ(
      render(
          "{{ 'Hello World'|lower }}|{{ 'hello world'|upper }}|{{ 'hello wORLD-foo(bar'|title }}|{{ 'hELLO'|capitalize }}"),
      "hello world|HELLO WORLD|Hello World-Foo(Bar|Hello");
}

TEST(JinjaFilters, TrimAndReplace) {
  EXPECT_EQ(
      render(
          "[{{ '  a b  '|trim }}][{{ 'xxaxx'|trim('x') }}][{{ 'aXbX'|replace('X', '-') }}][{{ 'aaa'|replace('a', 'b', 2) }}]"),
      "[a b][a][a-b-][bba]");
}

TEST(JinjaFilters, TojsonMatchesTransformers) {
  EXPECT_EQ(render("{{ d|tojson }}", sample()), R"({"a": 1, "b": "two", "c": [1, 2]})");
  EXPECT_EQ(render("{{ '\xC3\xA9\"\\n'|tojson }}|{{ 1.0|tojson }}|{{ none|tojson }}|{{ true|tojson }}"),
            "\"\xC3\xA9\\\"\\n\"|1.0|null|true");
  EXPECT_EQ(render("{{ {'a': [1, {'b': none}], 'c': []}|tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": []\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ [1, {'a': 2}]|tojson(separators=(',', ':')) }}"),
            R"({"a": 2, "b": 1}|[1,{"a":2}])");
  EXPECT_EQ(render("{{ '\xC3\xA9\xF0\x9F\x98\x80'|tojson(ensure_ascii=true) }}"), R"("\u00e9\ud83d\ude00")");
}

TEST(JinjaFilters, LengthCountsCodePointsItemsAndKeys) {
  EXPECT_EQ(render("{{ 'h\xC3\xA9'|length }}|{{ l|length }}|{{ d|count }}|{{ missing|length }}", sample()), "2|3|3|0");
}

TEST(JinjaFilters, ItemsKeysValues) {
  EXPECT_EQ(render("{{ d|items|list }}|{{ d|keys|list }}|{{ d|values|list }}|{{ missing|items|list }}", sample()),
            "[('a', 1), ('b', 'two'), ('c', [1, 2])]|['a', 'b', 'c']|[1, 'two', [1, 2]]|[]");
}

TEST(JinjaFilters, FirstLastListReverse) {
  EXPECT_EQ(
      render(
          "{{ l|first }}|{{ l|last }}|{{ 'abc'|first }}|{{ 'abc'|last }}|{{ 'abc'|list }}|{{ l|reverse|list }}|{{ 'abc'|reverse }}",
          sample()),
      "1|3|a|c|['a', 'b', 'c']|[3, 2, 1]|cba");
  EXPECT_EQ(render("[{{ []|first }}][{{ d|first }}]", sample()), "[][a]");
}

TEST(JinjaFilters, JoinAndMap) {
  EXPECT_EQ(render("{{ [1,2,3]|join(', ') }}|{{ [1,2,3]|join }}|{{ users|join(',', attribute='n') }}", sample()),
            "1, 2, 3|123|a,b");
  EXPECT_EQ(
      render(
          "{{ users|map(attribute='n')|join('-') }}|{{ ['a','b']|map('upper')|list }}|{{ users|map(attribute='x', default=0)|list }}",
          sample()),
      "a-b|['A', 'B']|[0, 1]");
  EXPECT_EQ(render("{{ [[1, 2], [3]]|map(attribute='0')|list }}"), "[1, 3]");
}

TEST(JinjaFilters, SelectRejectAndTheirAttrForms) {
  EXPECT_EQ(
      render(
          "{{ users|selectattr('n', 'equalto', 'b')|list }}|{{ users|rejectattr('n', '==', 'b')|map(attribute='n')|list }}",
          sample()),
      "[{'n': 'b', 'x': 1}]|['a']");
  EXPECT_EQ(
      render(
          "{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3,4]|reject('even')|list }}|{{ [0,1,'',none,'x']|select|list }}"),
      "[1, 3]|[1, 3]|[1, 'x']");
  EXPECT_EQ(
      render(
          "{{ users|selectattr('x', 'defined')|list }}|{{ users|selectattr('x')|map(attribute='n')|list }}|{{ [1,2,3]|select('>', 1)|list }}",
          sample()),
      "[{'n': 'b', 'x': 1}]|['b']|[2, 3]");
}

TEST(JinjaFilters, SortUniqueMinMaxSum) {
  EXPECT_EQ(
      render(
          "{{ [3,1,2]|sort }}|{{ ['b','A','a']|sort }}|{{ ['b','A','a']|sort(case_sensitive=true) }}|{{ [3,1,2]|sort(reverse=true) }}"),
      "[1, 2, 3]|['A', 'a', 'b']|['A', 'a', 'b']|[3, 2, 1]");
  EXPECT_EQ(render("{{ users|sort(attribute='n', reverse=true)|map(attribute='n')|list }}", sample()), "['b', 'a']");
  EXPECT_EQ(render("{{ [1,2,2,'a','A']|unique|list }}|{{ ['a','A']|unique(case_sensitive=true)|list }}"),
            "[1, 2, 'a']|['a', 'A']");
  EXPECT_EQ(
      render(
          "{{ [1,2,3]|sum }}|{{ [1,2,3]|min }}|{{ [1,2,3]|max }}|{{ ['B','a']|max }}|{{ [{'x': 1}, {'x': 2}]|sum(attribute='x', start=10) }}"),
      "6|1|3|B|13");
}

TEST(JinjaFilters, Numbers) {
  EXPECT_EQ(
      render(
          "{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '0x1f'|int(0, 16) }}|{{ true|int }}"),
      "42|4|0|7|3|31|1");
  EXPECT_EQ(render("{{ '1.5'|float }}|{{ 'a'|float }}|{{ 3|float }}|{{ -1.5|abs }}|{{ -3|abs }}"), "1.5|0.0|3.0|1.5|3");
  EXPECT_EQ(
      render(
          "{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.567|round(2) }}|{{ 2.5|round(0, 'floor') }}|{{ 2.1|round(0, 'ceil') }}|{{ 5|round }}"),
      "2.0|4.0|2.57|2.0|3.0|5");
}

TEST(JinjaFilters, DefaultOnlyReplacesUndefinedUnlessBoolean) {
  EXPECT_EQ(
      render(
          "{{ x|default('dflt') }}|{{ ''|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ none|default('n') }}|{{ x|d('dd') }}"),
      "dflt||dflt|None|dd");
}

TEST(JinjaFilters, IndentFollowsJinja) {
  EXPECT_EQ(
      render(
          "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x'|indent(first=true) }}"),
      "a\n    b\n\n    c|  a\n  b|a\n  \n  b|    x");
}

TEST(JinjaFilters, EscapeStringSafeAndFormat) {
  EXPECT_EQ(render("{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|escape }}|{{ '<x>'|safe }}"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;|&lt;b&gt;|<x>");
  EXPECT_EQ(render("{{ none|string }}|{{ 1|string }}|{{ [1, 'a']|string }}|{{ '%s and %s'|format('a', 'b') }}"),
            "None|1|[1, 'a']|a and b");
}

TEST(JinjaFilters, BatchDictsortAttr) {
  EXPECT_EQ(render("{{ [1,2,3,4,5]|batch(2, 0)|list }}|{{ [1,2,3]|batch(2)|list }}"),
            "[[1, 2], [3, 4], [5, 0]]|[[1, 2], [3]]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }}|{{ {'b': 1, 'a': 2}|dictsort(by='value') }}"),
            "[('a', 2), ('b', 1)]|[('b', 1), ('a', 2)]");
  EXPECT_EQ(render("{{ d|attr('b') }}", sample()), "two");
}

TEST(JinjaTests, TypeTests) {
  EXPECT_EQ(
      render(
          "{{ x is defined }}|{{ d is defined }}|{{ x is undefined }}|{{ none is none }}|{{ 1 is number }}|{{ 'a' is string }}",
          sample()),
      "False|True|True|True|True|True");
  EXPECT_EQ(
      render(
          "{{ d is mapping }}|{{ l is iterable }}|{{ l is sequence }}|{{ true is boolean }}|{{ 1.0 is integer }}|{{ 1.0 is float }}|{{ 1 is integer }}",
          sample()),
      "True|True|True|True|False|True|True");
  EXPECT_EQ(
      render(
          "{{ true is true }}|{{ 1 is true }}|{{ 0 is false }}|{{ false is false }}|{{ 1 is not none }}|{{ range is callable }}"),
      "True|False|False|True|True|True");
}

TEST(JinjaTests, ValueTests) {
  EXPECT_EQ(
      render(
          "{{ 3 is odd }}|{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(2) }}|{{ 5 is gt 3 }}|{{ 5 is lessthan 3 }}"),
      "True|True|True|False|True|False");
  EXPECT_EQ(
      render(
          "{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ 1 is in [1] }}|{{ 2 is eq 2 }}|{{ 2 is ne 2 }}|{{ none is sameas none }}"),
      "True|True|True|True|False|True");
  EXPECT_EQ(render("{{ 'upper' is filter }}|{{ 'nope' is filter }}|{{ 'odd' is test }}"), "True|False|True");
}

TEST(JinjaGlobals, RangeNamespaceDict) {
  EXPECT_EQ(render("{{ range(3)|list }}|{{ range(2, 5)|list }}|{{ range(0)|list }}|{{ range(3, 0, -1)|list }}"),
            "[0, 1, 2]|[2, 3, 4]|[]|[3, 2, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b=2) }}|{{ namespace({'a': 1}).a }}"), "{'a': 1, 'b': 2}|1");
}

TEST(JinjaGlobals, StrftimeNowFormatsTheCurrentTime) {
  const std::string year = render("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
  const std::string date = render("{{ strftime_now('%d %b %Y') }}");
  EXPECT_EQ(date.size(), 11u) << date;
}

}  // namespace
}  // namespace px::jinja
