// The q8 wire form of hidden rows (swarm/q8_rows.h): every value within half a step of its
// block's scale, an outlier costing precision only in its own block of 32, a width that is not
// a multiple of 32, and hostile bytes refused with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/fp16.h"
#include "swarm/q8_rows.h"

namespace px::swarm {
namespace {

std::vector<float> random_rows(size_t n, int width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> rows(n * size_t(width));
  for (float& v : rows) v = normal(rng);
  return rows;
}

// The reference: each block's own scale, rounded to f16 as sent, half a step of error at most.
void expect_within_half_a_step(const std::vector<float>& rows, const std::vector<float>& got, int width) {
  ASSERT_EQ(got.size(), rows.size());
  for (size_t r = 0; r < rows.size() / size_t(width); ++r) {
    for (int begin = 0; begin < width; begin += kQ8BlockValues) {
      const int count = std::min(kQ8BlockValues, width - begin);
      float amax = 0;
      for (int i = 0; i < count; ++i) amax = std::max(amax, std::abs(rows[r * width + begin + i]));
      const float scale = fp16_to_f32(f32_to_fp16(amax / 127.0f));
      for (int i = 0; i < count; ++i) {
        const size_t at = r * width + begin + i;
        // Half a step, and the clamp at 127 steps when the f16 scale rounded down.
        EXPECT_LE(std::abs(got[at] - rows[at]), 0.5f * scale + amax * 1e-3f) << "row " << r << " value " << begin + i;
        EXPECT_FLOAT_EQ(got[at] / scale, std::nearbyint(got[at] / scale)) << "a whole number of steps";
      }
    }
  }
}

TEST(Q8Rows, EveryValueIsWithinHalfAStepOfItsBlocksScale) {
  for (int width : {32, 40, 64, 7}) {
    SCOPED_TRACE(width);
    const std::vector<float> rows = random_rows(5, width, uint32_t(width));
    std::string bytes;
    q8_encode(rows, width, bytes);
    EXPECT_EQ(bytes.size(), 5 * q8_row_bytes(width));
    EXPECT_EQ(q8_row_bytes(width), size_t(width) + 2 * size_t((width + 31) / 32));
    std::vector<float> got;
    q8_decode(bytes, width, got);
    expect_within_half_a_step(rows, got, width);
    EXPECT_EQ(q8_round_trip(rows, width), got);
  }
}

TEST(Q8Rows, AnOutlierCostsPrecisionOnlyInItsOwnBlock) {
  const int width = 64;
  std::vector<float> rows = random_rows(1, width, 9);
  rows[5] = 300.0f;  // an outlier dimension, as real hidden states have
  const std::vector<float> got = q8_round_trip(rows, width);
  expect_within_half_a_step(rows, got, width);
  float worst_other_block = 0;
  for (int i = 32; i < width; ++i) worst_other_block = std::max(worst_other_block, std::abs(got[i] - rows[i]));
  EXPECT_LT(worst_other_block, 0.05f) << "the second block keeps its own scale";
  EXPECT_NEAR(got[5], 300.0f, 300.0f / 127);
}

TEST(Q8Rows, ZerosAndTinyValuesDecodeToZeroWithoutDividingByZero) {
  const std::vector<float> rows(32, 0.0f);
  EXPECT_EQ(q8_round_trip(rows, 32), rows);
  std::vector<float> tiny(32, 1e-9f);
  for (float v : q8_round_trip(tiny, 32)) EXPECT_EQ(v, 0.0f);
}

TEST(Q8Rows, RejectsBrokenOrHostileBytes) {
  const std::vector<float> rows = random_rows(2, 40, 3);
  std::string bytes;
  q8_encode(rows, 40, bytes);
  std::vector<float> out;
  auto error = [&](const std::string& b) {
    try {
      q8_decode(b, 40, out);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(error(bytes.substr(1)).find("are not whole rows of 44 bytes"), std::string::npos) << error(bytes.substr(1));
  std::string bad = bytes;
  const uint16_t inf = 0x7c00, negative = 0xbc00;  // f16 +inf, -1
  std::memcpy(bad.data(), &inf, 2);
  EXPECT_NE(error(bad).find("row 0 block 0 has scale inf"), std::string::npos) << error(bad);
  bad = bytes;
  std::memcpy(bad.data() + 44 + 34, &negative, 2);  // row 1, block 1
  EXPECT_NE(error(bad).find("row 1 block 1 has scale -1"), std::string::npos) << error(bad);
  // Non-finite and huge values saturate: what this node sends, its peers accept.
  std::vector<float> odd = rows;
  odd[3] = NAN;
  odd[4] = INFINITY;
  odd[45] = -1e30f;
  q8_encode(odd, 40, bad);
  EXPECT_EQ(error(bad), "accepted");
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_NEAR(out[4], 127.0f * 65504.0f, 127.0f * 65504.0f / 500);
  EXPECT_NEAR(out[45], -127.0f * 65504.0f, 127.0f * 65504.0f / 500);
  EXPECT_THROW(q8_encode(rows, 7, bad), Error);  // 80 values are not rows of 7
}

}  // namespace
}  // namespace px::swarm
