// StopStringMatcher: text that may start a stop string is held back, a complete stop string
// ends the output, and no byte of a stop string is ever released.
#include <gtest/gtest.h>

#include <random>

#include "runtime/stop_strings.h"

namespace px {
namespace {

// Feeds `pieces` and returns everything released (pushes plus the final flush).
std::string run(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopStrings, WithoutStopStringsEverythingPassesAtOnce) {
  StopStringMatcher m;
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.held(), 0u);
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, StopInsideOnePieceCutsTheTextBeforeIt) {
  StopStringMatcher m({"END"});
  EXPECT_EQ(m.push("hello END world"), "hello ");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, StopSpanningPiecesIsHeldThenDropped) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("abc<"), "abc");
  EXPECT_EQ(m.held(), 1u);
  EXPECT_EQ(m.push("/"), "");
  EXPECT_EQ(m.push("s"), "");
  EXPECT_EQ(m.push(">tail"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, FalseStartIsReleasedWhenItCannotBeAStop) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("a</"), "a");
  EXPECT_EQ(m.push("x"), "</x");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, HeldTailIsReleasedAtTheEnd) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(m.push("go ST"), "go ");
  EXPECT_EQ(m.flush(), "ST");
}

TEST(StopStrings, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "lo w"});
  EXPECT_EQ(run(m, {"hel", "lo world"}), "hel");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, OverlappingPrefixKeepsTheLongestPossibleStart) {
  // "aab" after "aaa": only the last two a's can still start "aab".
  StopStringMatcher m({"aab"});
  EXPECT_EQ(m.push("aaa"), "a");
  EXPECT_EQ(m.push("b"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, EmptyStopStringsAreIgnored) {
  StopStringMatcher m({"", "x"});
  EXPECT_EQ(m.stops().size(), 1u);
  EXPECT_EQ(run(m, {"abc"}), "abc");
}

TEST(StopStrings, MultibyteStopNeverSplitsACharacter) {
  StopStringMatcher m({"\xc3\xa9t\xc3\xa9"});  // "été"
  EXPECT_EQ(m.push("caf\xc3\xa9"), "caf");      // "é" may start "été"
  EXPECT_EQ(m.push(" "), "\xc3\xa9 ");
}

TEST(StopStrings, AnySplitOfTheTextGivesTheSameOutput) {
  // Property: however the generated text is cut into pieces, the released text is the text
  // before the first stop string (or all of it).
  const std::string text = "the cat sat on the mat; the end of the story";
  const std::vector<std::string> stops = {"the end", "mat!", "xyz"};
  const std::string expected = text.substr(0, text.find("the end"));
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::string> pieces;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t len = std::min<size_t>(text.size() - pos, 1 + rng() % 6);
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    StopStringMatcher m(stops);
    std::string out;
    for (const std::string& p : pieces) {
      out += m.push(p);
      // Never released: any byte past the stop's start.
      ASSERT_LE(out.size(), expected.size());
    }
    out += m.flush();
    EXPECT_EQ(out, expected);
    EXPECT_TRUE(m.stopped());
  }
}

}  // namespace
}  // namespace px
