// Commitments to stage outputs (runtime/state_commitment.h): what is committed, the wire form
// and its parser against hostile input, the check's verdicts on hand-made rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fp16.h"
#include "model/rng.h"
#include "runtime/state_commitment.h"

namespace px {
namespace {

std::vector<float> random_rows(int rows, int width, uint64_t seed) {
  NormalRng rng(seed);
  std::vector<float> v(size_t(rows) * width);
  for (float& x : v) x = rng.normal(0.0f, 1.0f);
  return v;
}

// ---- what is committed --------------------------------------------------------------------

TEST(StateCommitment, CommitsTheLargestMagnitudesInOrder) {
  const std::vector<float> rows = {0.5f, -3.0f, 2.0f, 0.1f, -2.5f, 1.0f,   // row 0
                                   4.0f, 0.0f, 0.0f, -4.0f, 0.25f, 0.0f};  // row 1: a tie
  const StateCommitment c = commit_states(rows, 6, 3);
  ASSERT_EQ(c.rows(), 2);
  EXPECT_EQ(c.indices, (std::vector<uint16_t>{1, 4, 2, 0, 3, 4}));
  EXPECT_EQ(fp16_to_f32(c.values[0]), -3.0f);
  EXPECT_EQ(fp16_to_f32(c.values[1]), -2.5f);
  EXPECT_EQ(fp16_to_f32(c.values[4]), -4.0f);  // equal magnitudes: the lower index first
}

TEST(StateCommitment, RejectsBadShapesAndNonFiniteRows) {
  const std::vector<float> rows = random_rows(2, 64, 1);
  EXPECT_THROW(commit_states(rows, 64, 0), Error);
  EXPECT_THROW(commit_states(rows, 64, kMaxCommitTopK + 1), Error);
  EXPECT_THROW(commit_states(std::span(rows).first(100), 64, 4), Error);  // not whole rows
  std::vector<float> bad = rows;
  bad[70] = NAN;
  EXPECT_THROW(commit_states(bad, 64, 4), Error);
  bad[70] = 1e6f;  // beyond f16: no honest stage sends that on an f16 wire either
  EXPECT_THROW(commit_states(bad, 64, 4), Error);
}

TEST(StateCommitment, SizeIs16BytesPerRowPlusHeader) {
  const StateCommitment c = commit_states(random_rows(32, 256, 2), 256);
  EXPECT_EQ(serialize_commitment(c).size(), 16u + 32u * 16u);  // 528 bytes per 32 positions
}

TEST(StateCommitment, SlicesAndAppendsRows) {
  const std::vector<float> rows = random_rows(10, 64, 3);
  const StateCommitment whole = commit_states(rows, 64);
  StateCommitment joined = slice_commitment(whole, 0, 4);
  append_commitment(joined, slice_commitment(whole, 4, 6));
  EXPECT_EQ(joined.indices, whole.indices);
  EXPECT_EQ(joined.values, whole.values);
  EXPECT_THROW(slice_commitment(whole, 8, 3), Error);
  StateCommitment other = commit_states(random_rows(1, 64, 4), 64, 2);
  EXPECT_THROW(append_commitment(joined, other), Error);
}

// ---- the wire form against hostile peers --------------------------------------------------

class CommitmentParser : public ::testing::Test {
 protected:
  void SetUp() override { bytes = serialize_commitment(commit_states(random_rows(3, 64, 5), 64, 4)); }
  void expect_error(const std::vector<uint8_t>& b, const std::string& part) {
    try {
      parse_commitment(b);
      ADD_FAILURE() << "parsed; expected an error mentioning '" << part << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
  void put_u16(size_t at, uint16_t v) {
    bytes[at] = uint8_t(v);
    bytes[at + 1] = uint8_t(v >> 8);
  }
  static size_t entry(int row, int j) { return 16 + (size_t(row) * 4 + j) * 4; }
  uint16_t get_index(int row, int j) const { return uint16_t(bytes[entry(row, j)] | bytes[entry(row, j) + 1] << 8); }
  std::vector<uint8_t> bytes;
};

TEST_F(CommitmentParser, RoundTrips) {
  const StateCommitment c = parse_commitment(bytes);
  EXPECT_EQ(serialize_commitment(c), bytes);
  EXPECT_EQ(c.rows(), 3);
  EXPECT_EQ(c.width, 64);
}

TEST_F(CommitmentParser, RejectsEveryTruncationAndTrailingBytes) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(parse_commitment(std::span(bytes).first(n)), Error) << n << " bytes";
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  expect_error(longer, "bytes arrived");
}

TEST_F(CommitmentParser, RejectsBadHeader) {
  std::vector<uint8_t> b = bytes;
  b[0] = 'X';
  expect_error(b, "magic");
  b = bytes;
  b[4] = 2;
  expect_error(b, "version");
  b = bytes;
  b[5] = 0;
  expect_error(b, "k = 0");
  b = bytes;
  b[5] = 200;  // oversized k
  expect_error(b, "k = 200");
  b = bytes;
  b[6] = 1;
  expect_error(b, "reserved");
  b = bytes;
  b[8] = 2;  // width 2 < k 4
  b[9] = 0;
  expect_error(b, "k = 4");
  b = bytes;
  b[10] = 2;  // width 131136
  expect_error(b, "width");
}

TEST_F(CommitmentParser, RejectsWrongRowCounts) {
  std::vector<uint8_t> b = bytes;
  b[12] = 4;  // says 4 rows, holds 3
  expect_error(b, "header says 4 rows");
  b[12] = 0xff;
  b[13] = 0xff;
  b[14] = 0xff;
  b[15] = 0x7f;  // a hostile count: refused before any allocation
  expect_error(b, "exceed the limit");
  EXPECT_THROW(parse_commitment(bytes, /*max_rows=*/2), Error);
}

TEST_F(CommitmentParser, RejectsBadEntries) {
  put_u16(entry(1, 2), 64);  // index outside the row
  expect_error(bytes, "outside the row");
  SetUp();
  put_u16(entry(1, 2), get_index(1, 0));  // twice in a row
  expect_error(bytes, "twice");
  SetUp();
  put_u16(entry(2, 1) + 2, 0x7e00);  // NaN
  expect_error(bytes, "not a finite value");
  SetUp();
  put_u16(entry(2, 1) + 2, 0xfc00);  // -inf
  expect_error(bytes, "not a finite value");
  SetUp();
  put_u16(entry(0, 3) + 2, 0x7bff);  // the last entry larger than the first
  expect_error(bytes, "decreasing magnitude");
}

// ---- the check ----------------------------------------------------------------------------

TEST(StateCommitmentCheck, ExactReplayPassesWithNothingMeasured) {
  const std::vector<float> rows = random_rows(40, 128, 6);
  const CommitmentVerdict v = check_states(commit_states(rows, 128), rows);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.first_failing_row, -1);
  EXPECT_EQ(v.max_row_error, 0);
  EXPECT_EQ(v.index_misses, 0);
  EXPECT_EQ(v.windows_judged, 1);  // 40 rows: the 8-row tail joins the first window
  EXPECT_TRUE(check_states(commit_states(rows, 128), rows, CommitmentThresholds::exact()).ok);
}

TEST(StateCommitmentCheck, ValuesInsideTheirRoundingCellPassExactly) {
  // 1.0 and 1.00048 both round to f16 1.0 (spacing 2^-10): within the cell there is no error.
  std::vector<float> rows(8, 0.0f);
  rows[3] = 1.0f;
  const StateCommitment c = commit_states(rows, 8, 1);
  rows[3] = 1.00048f;
  EXPECT_TRUE(check_states(c, rows, CommitmentThresholds::exact()).ok);
  rows[3] = 1.0006f;  // outside the cell
  const CommitmentVerdict v = check_states(c, rows, CommitmentThresholds::exact());
  EXPECT_FALSE(v.ok);
  EXPECT_NEAR(v.max_row_error, 0.0006 - 0.00048828125, 1e-6);
}

TEST(StateCommitmentCheck, AChangedRowFailsAtThatRow) {
  const std::vector<float> rows = random_rows(64, 128, 7);
  const StateCommitment c = commit_states(rows, 128);
  std::vector<float> replay = rows;
  for (int i = 0; i < 128; ++i) replay[37 * 128 + i] = -replay[37 * 128 + i] * 0.5f;
  const CommitmentVerdict v = check_states(c, replay);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_failing_row, 37);
  EXPECT_NE(v.reason.find("row 37"), std::string::npos) << v.reason;
}

TEST(StateCommitmentCheck, CommittedIndicesMustBeTheLargest) {
  // Right values at the committed indices, but the replay has a larger entry elsewhere.
  const std::vector<float> rows = random_rows(4, 64, 8);
  const StateCommitment c = commit_states(rows, 64);
  std::vector<float> replay = rows;
  // Four entries the commitment does not name become the largest of row 1.
  int raised = 0;
  for (int i = 0; i < 64 && raised < 4; ++i) {
    if (std::find(c.indices.begin() + 4, c.indices.begin() + 8, i) == c.indices.begin() + 8) {
      replay[64 + i] = 100.0f;
      ++raised;
    }
  }
  const CommitmentVerdict v = check_states(c, replay);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_failing_row, 1);
  EXPECT_GT(v.index_misses, 0);
}

TEST(StateCommitmentCheck, SmallDriftOfEveryRowFailsOnTheWindowMedian) {
  const std::vector<float> rows = random_rows(64, 128, 9);
  const StateCommitment c = commit_states(rows, 128);
  std::vector<float> replay = rows;
  for (float& x : replay) x *= 1.004f;  // 0.4 %: under the row threshold, over the median one
  const CommitmentVerdict v = check_states(c, replay);
  EXPECT_FALSE(v.ok);
  EXPECT_LT(v.max_row_error, CommitmentThresholds{}.row_error);
  EXPECT_GT(v.max_window_median, CommitmentThresholds{}.window_median);
  EXPECT_EQ(v.first_failing_row, 0);
  // Too few rows for a window: judged per row only.
  EXPECT_TRUE(check_states(slice_commitment(c, 0, 8), std::span(replay).first(8 * 128)).ok);
}

TEST(StateCommitmentCheck, ShapeMismatchAndNonFiniteReplayAreFailedVerdicts) {
  const std::vector<float> rows = random_rows(5, 64, 10);
  const StateCommitment c = commit_states(rows, 64);
  CommitmentVerdict v = check_states(c, std::span(rows).first(4 * 64));
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("5 rows"), std::string::npos) << v.reason;
  std::vector<float> bad = rows;
  bad[3 * 64 + 9] = INFINITY;
  v = check_states(c, bad);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_failing_row, 3);
}

}  // namespace
}  // namespace px
