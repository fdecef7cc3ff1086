// Expressions: literals, operators and their precedence, attribute and item access, slices,
// rendering of values. Expected strings are what Python's Jinja2 renders.
#include <gtest/gtest.h>

#include "chat/jinja.h"
#include "unit/jinja_test_util.h"

namespace px::jinja {
namespace {

using test::json;
using test::render;
using test::sample;

TEST(JinjaExpr, LiteralsRenderLikePythonStr) {
  EXPECT_EQ(render("{{ 1 }}|{{ 1.0 }}|{{ true }}|{{ False }}|{{ none }}|{{ None }}|{{ 'a' }}"),
            "1|1.0|True|False|None|None|a");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }}|{{ {'a': 1} }}|{{ {} }}|{{ [] }}"),
            "[1, 'a', None, True]|{'a': 1}|{}|[]");
  EXPECT_EQ(render("{{ ('a', 'b') }}|{{ () }}|{{ (1,) }}"), "('a', 'b')|()|(1,)");
  EXPECT_EQ(render("{{ ['it\\'s', \"q\\\"\"] }}"), "[\"it's\", 'q\"']");
}

TEST(JinjaExpr, FloatsPrintAsPythonRepr) {
  EXPECT_EQ(render("{{ 1e20 }}|{{ 1e-5 }}|{{ 0.1 + 0.2 }}|{{ 100.0 }}|{{ 1e16 }}|{{ 123456789.123 }}|{{ -0.0 }}"),
            "1e+20|1e-05|0.30000000000000004|100.0|1e+16|123456789.123|-0.0");
}

TEST(JinjaExpr, ArithmeticFollowsPython) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}"),
            "7|9|3|-4|1|2");
  EXPECT_EQ(render("{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 7 / 2 }}|{{ 6 / 2 }}|{{ 1.5 + 1 }}|{{ 10.0 // 3 }}|{{ 10 % 3.0 }}"),
            "1024|0.5|3.5|3.0|2.5|3.0|1.0");
  EXPECT_EQ(render("{{ -(2) ** 2 }}|{{ 2 ** 3 ** 2 }}|{{ -1 ** 2 }}|{{ true + 1 }}"), "4|64|1|2");
}

TEST(JinjaExpr, StringAndListOperators) {
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] * 2 }}|{{ [1,2] + [3] }}|{{ 'x' + 'y' }}"),
            "a1NoneTrue|ababab|[1, 1]|[1, 2, 3]|xy");
  EXPECT_EQ(render("{{ 'a' ~ 'b' + 'c' }}|{{ 'a' ~ undefined_name ~ 'b' }}"), "abc|ab");
}

TEST(JinjaExpr, ComparisonsChainAndMixNumbers) {
  EXPECT_EQ(
      render("{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' < 'b' }}|{{ [1,2] < [1,3] }}"),
      "True|False|True|True|True|True");
  EXPECT_EQ(render("{{ (1, 2) == (1, 2) }}|{{ (1, 2) == [1, 2] }}"), "True|False");
  EXPECT_EQ(
      render("{{ 1 != 2 }}|{{ 'a' == 'a' }}|{{ [1, [2]] == [1, [2]] }}|{{ {'a': 1} == {'a': 1} }}|{{ 1 == '1' }}"),
      "True|True|True|True|False");
}

TEST(JinjaExpr, MembershipTests) {
  EXPECT_EQ(render("{{ 'b' in 'abc' }}|{{ 2 not in [1,2] }}|{{ 'k' in {'k':1} }}|{{ 'z' in undefined_name }}"),
            "True|False|True|False");
}

TEST(JinjaExpr, BooleanOperatorsReturnOperands) {
  EXPECT_EQ(
      render(
          "{{ true and 'x' }}|{{ 0 or 'y' }}|{{ not 0 }}|{{ none or [] }}|{{ '' and 1 }}|{{ 5 > 3 and 'a' or 'b' }}"),
      "x|y|True|[]||a");
  EXPECT_EQ(render("{{ not 1 == 2 }}|{{ not (true and false) }}"), "True|True");
}

TEST(JinjaExpr, ConditionalExpressions) {
  EXPECT_EQ(render("{{ 'yes' if 1 else 'no' }}|{{ 'yes' if 0 else 'no' }}|{{ 'only' if 0 }}|"), "yes|no||");
  EXPECT_EQ(render("{{ 1 if true else 2 if false else 3 }}|{{ 1 if false else 2 if false else 3 }}"), "1|3");
}

TEST(JinjaExpr, MissingAttributesAndKeysAreUndefined) {
  EXPECT_EQ(render("[{{ d.zz }}][{{ d['zz'] }}][{{ nope }}][{{ l[5] }}][{{ nope.deeper }}]", sample()), "[][][][][]");
  EXPECT_EQ(render("{{ d.a }}|{{ d['b'] }}|{{ l[0] }}|{{ l[-1] }}|{{ l.0 }}|{{ d.c[1] }}", sample()), "1|two|1|3|1|2");
}

TEST(JinjaExpr, AttributeAccessPrefersMethodsSubscriptPrefersKeys) {
  const json ctx = json::parse(R"({"d": {"items": "key"}})");
  EXPECT_EQ(render("{{ d['items'] }}|{{ d.items()|list }}", ctx), "key|[('items', 'key')]");
}

TEST(JinjaExpr, SlicesFollowPython) {
  EXPECT_EQ(
      render("{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ [1,2,3,4,5][1::2] }}|{{ [1,2,3][-2:] }}|{{ [1,2,3][:-1] }}"),
      "el|olleh|[2, 4]|[2, 3]|[1, 2]");
  EXPECT_EQ(render("{{ [1,2,3][5:] }}|{{ [1,2,3][::-2] }}|{{ 'abc'[10:-10:-1] }}"), "[]|[3, 1]|cba");
}

TEST(JinjaExpr, StringsIndexByCodePoint) {
  EXPECT_EQ(render("{{ 'h\xC3\xA9llo'[1] }}|{{ 'h\xC3\xA9llo'|length }}|{{ 'h\xC3\xA9llo'[::-1] }}"),
            "\xC3\xA9|5|oll\xC3\xA9h");
}

TEST(JinjaExpr, AdjacentStringLiteralsConcatenate) { EXPECT_EQ(render("{{ 'a' 'b' \"c\" }}"), "abc"); }

TEST(JinjaExpr, FiltersBindTighterThanArithmetic) {
  EXPECT_EQ(render("{{ l|length - 1 }}|{{ -3|abs }}|{{ 1 + l|length }}", sample()), "2|3|4");
}

TEST(JinjaExpr, PercentFormattingFollowsPython) {
  EXPECT_EQ(
      render(
          "{{ '%s-%s' % (1, 'a') }}|{{ '%d' % 3.7 }}|{{ '%5.2f|' % 3.14159 }}|{{ '%-5s|' % 'ab' }}|{{ '%05d' % 42 }}"),
      "1-a|3| 3.14||ab   ||00042");
  EXPECT_EQ(render("{{ '%(a)s+%(b)d' % {'a': 'x', 'b': 2} }}|{{ '%s' % [1, 2] }}|{{ '%r' % 'a' }}|{{ '%x' % 255 }}"),
            "x+2|[1, 2]|'a'|ff");
}

TEST(JinjaExpr, StringMethods) {
  EXPECT_EQ(
      render(
          "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}"),
      "['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']");
  EXPECT_EQ(
      render(
          "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x','c')) }}|{{ 'aXbX'.replace('X','-') }}|{{ 'aXbX'.replace('X','-', 1) }}"),
      "True|True|a-b-|a-bX");
  EXPECT_EQ(render("{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.find('z') }}|{{ 'hello'.count('l') }}"),
            "2|3|-1|2");
  EXPECT_EQ(
      render("[{{ '\\n\\nx\\n'.strip('\\n') }}][{{ 'xay'.lstrip('x') }}][{{ ' a '.rstrip() }}][{{ ' x '.strip() }}]"),
      "[x][ay][ a][x]");
  EXPECT_EQ(
      render(
          "{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ '-'.join(['a', 'b']) }}"),
      "Hello World|Hello|ABab|a-b");
  EXPECT_EQ(render("{{ '123'.isdigit() }}|{{ 'ab1'.isalpha() }}|{{ 'a\\nb'.splitlines() }}"), "True|False|['a', 'b']");
}

TEST(JinjaExpr, DictMethods) {
  EXPECT_EQ(render("{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}", sample()),
            "[('a', 1), ('b', 'two'), ('c', [1, 2])]|['a', 'b', 'c']|[1, 'two', [1, 2]]");
  EXPECT_EQ(render("{{ d.get('a') }}|{{ d.get('zz', 5) }}|{{ d.get('zz') }}", sample()), "1|5|None");
}

TEST(JinjaExpr, ContextKeepsJsonKeyOrder) {
  const json ctx = json::parse(R"({"d": {"z": 1, "a": 2, "m": 3}})");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", ctx), "zam");
}

TEST(JinjaExpr, CallsWithKeywordArguments) {
  EXPECT_EQ(render("{% set ns = namespace(a=1, b='x') %}{{ ns.a }}{{ ns.b }}|{{ dict(k=2).k }}"), "1x|2");
}

}  // namespace
}  // namespace px::jinja
