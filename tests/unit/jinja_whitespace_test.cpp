// Whitespace control and tokenization, with Hugging Face's settings (trim_blocks and
// lstrip_blocks on). Expected strings are what Python's Jinja2 renders.
#include <gtest/gtest.h>

#include "chat/jinja.h"
#include "unit/jinja_test_util.h"
#include "chat/jinja_lexer.h"

namespace px::jinja {
namespace {

using test::json;
using test::render;
using test::sample;

TEST(JinjaWhitespace, TrimBlocksDropsTheNewlineAfterABlockTag) {
  EXPECT_EQ(render("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");
}

TEST(JinjaWhitespace, LstripBlocksDropsIndentBeforeABlockTag) {
  EXPECT_EQ(render("line1\n  {% if true %}\n  inside\n  {% endif %}\nline2\n"), "line1\n  inside\nline2");
}

TEST(JinjaWhitespace, LstripDoesNotTouchExpressionTags) { EXPECT_EQ(render("x\n  {{ 1 }}\ny"), "x\n  1\ny"); }

TEST(JinjaWhitespace, LstripOnlyAppliesWhenTheTagStartsTheLine) {
  EXPECT_EQ(render("{% if true %}  {% endif %}|"), "  |");
  EXPECT_EQ(render("\t{% if true %}\tx{% endif %}"), "\tx");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespaceOnThatSide) {
  EXPECT_EQ(render("a {{- ' b ' -}} c"), "a b c");
  EXPECT_EQ(render("{% for i in [1, 2] -%}\n  {{ i }}\n{%- endfor %}"), "12");
  EXPECT_EQ(render("x\n\t  {%- if true %}\n\tyes\n{% endif -%}\n\n\nend"), "x\tyes\nend");
}

TEST(JinjaWhitespace, PlusDisablesLstripAndTrimForOneTag) {
  EXPECT_EQ(render("   {%+ if true %}keep{% endif %}"), "   keep");
  EXPECT_EQ(render("{% if true +%}\nkeepnl{% endif %}"), "\nkeepnl");
}

TEST(JinjaWhitespace, CommentsVanishAndTrimLikeBlocks) {
  EXPECT_EQ(render("x\n  {# c #}\ny"), "x\ny");
  EXPECT_EQ(render("text {# multi\nline #} after"), "text  after");
  EXPECT_EQ(render("{%- set x = 5 -%}\n\n   {{ x }}   \n{#- c -#}\n   z"), "5z");
}

TEST(JinjaWhitespace, OneTrailingNewlineOfTheTemplateIsDropped) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
}

TEST(JinjaWhitespace, WindowsLineEndingsBecomeNewlines) {
  EXPECT_EQ(render("{%- if true %}\r\n  crlf\r\n{%- endif %}\r\n"), "  crlf");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaWhitespace, RawBlockKeepsTagsAsText) {
  EXPECT_EQ(render("{% raw %}\n  {{ x }}\n{% endraw %}\nafter"), "\n  {{ x }}\nafter");
  EXPECT_EQ(render("a  {% raw -%}  x  {%- endraw %}  b"), "a  x  b");
}

TEST(JinjaWhitespace, LoopBodiesKeepTheirOwnText) {
  EXPECT_EQ(render("a\n{% for i in [1, 2] %}\n{{ i }}\n{% endfor %}\nb"), "a\n1\n2\nb");
  EXPECT_EQ(render("a {{- ' b ' -}} c\n{{ 'x' }}\n\n  {% for i in [1,2] %}\n  {{ i }}\n  {% endfor %}\ndone"),
            "a b c\nx\n\n  1\n  2\ndone");
}

TEST(JinjaWhitespace, DictLiteralClosingBracesDoNotEndTheTag) {
  EXPECT_EQ(render("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");
}

TEST(JinjaLexer, TokensCarryLinesAndColumns) {
  const auto tokens = tokenize("ab\n  {{ x }}", LexOptions{}, "t");
  ASSERT_GE(tokens.size(), 4u);
  EXPECT_EQ(tokens[0].type, TokenType::Text);
  EXPECT_EQ(tokens[1].type, TokenType::VarBegin);
  EXPECT_EQ(tokens[1].line, 2);
  EXPECT_EQ(tokens[1].column, 3);
  EXPECT_EQ(tokens[2].type, TokenType::Name);
  EXPECT_EQ(tokens[2].text, "x");
  EXPECT_EQ(tokens[2].column, 6);
}

TEST(JinjaLexer, StringEscapesFollowPython) {
  EXPECT_EQ(render(R"({{ 'a\nb\t\\\'\"' }})"), "a\nb\t\\'\"");
  EXPECT_EQ(render(R"({{ '\x41\u00e9\U0001F600' }})"), "A\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(render(R"({{ 'keep \d' }})"), "keep \\d");
  EXPECT_EQ(render("{{ \"it's\" }}|{{ 'say \"hi\"' }}"), "it's|say \"hi\"");
}

TEST(JinjaLexer, NumbersAllowUnderscoresAndExponents) {
  EXPECT_EQ(render("{{ 1_000 }}|{{ 1e3 }}|{{ 2.5e-1 }}|{{ 0.5 }}"), "1000|1000.0|0.25|0.5");
}

TEST(JinjaLexer, RejectsUnclosedConstructsWithTheirPosition) {
  EXPECT_THROW(render("{{ x "), TemplateError);
  EXPECT_THROW(render("{% if x"), TemplateError);
  EXPECT_THROW(render("{# never closed"), TemplateError);
  EXPECT_THROW(render("{{ 'abc }}"), TemplateError);
  EXPECT_THROW(render("{% raw %} no end"), TemplateError);
  try {
    render("ok\nok {{ (1 }}");
    FAIL() << "expected an error";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(JinjaLexer, RejectsStrayCharacters) {
  try {
    render("{{ a $ b }}");
    FAIL() << "expected an error";
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), "template line 1, column 6: unexpected character '$'");
  }
}

}  // namespace
}  // namespace px::jinja
