// Commitments to stage outputs (runtime/state_commitment.h): what is committed, the wire form
// and its parser against hostile input, the check's verdicts on hand-made rows, the dishonest
// worker test aid (runtime/stage_fault.h), and a stage executor attaching commitments that a
// replay verifies. The calibration on the real forward pass is state_commitment_replay_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "unit/stage_replay.h"
#include "unit/test_temp_dir.h"

#include "core/error.h"
#include "core/fp16.h"
#include "model/rng.h"
#include "model/synth.h"
#include "runtime/stage_executor.h"
#include "runtime/state_commitment.h"

namespace px {
namespace {

using namespace std::chrono_literals;

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

// ---- the dishonest worker test aid --------------------------------------------------------

TEST(StageFault, NamesParseAndRoundTrip) {
  for (auto k : {StageFaultKind::None, StageFaultKind::Corrupt, StageFaultKind::SkipLayer, StageFaultKind::WrongModel,
                 StageFaultKind::NoCommit}) {
    EXPECT_EQ(parse_stage_fault(stage_fault_name(k)), k);
  }
  EXPECT_THROW(parse_stage_fault("evil"), Error);
}

TEST(StageFault, SkipLayerDefaultsToTheLastOfTheRangeAndMustLieInIt) {
  StageFault f{StageFaultKind::SkipLayer};
  EXPECT_EQ(faulty_skipped_layer(f, {2, 5}), 4);
  f.skip_layer = 2;
  EXPECT_EQ(faulty_skipped_layer(f, {2, 5}), 2);
  f.skip_layer = 5;
  EXPECT_THROW(faulty_skipped_layer(f, {2, 5}), Error);
  EXPECT_EQ(faulty_skipped_layer(StageFault{}, {2, 5}), -1);
}

TEST(StageFault, CorruptionHasItsScaleAndDoesNotDependOnBatching) {
  const int width = 512, n = 6;
  const std::vector<float> clean = random_rows(n, width, 11);
  const StageFault f{StageFaultKind::Corrupt, 0.01, -1, 5};
  std::vector<int32_t> positions = {0, 1, 2, 3, 4, 5}, seqs(n, 7);
  std::vector<float> whole = clean;
  corrupt_rows(f, whole, width, positions, seqs);
  std::vector<float> split = clean;  // the same rows in two batches
  corrupt_rows(f, std::span(split).first(2 * width), width, std::span(positions).first(2), std::span(seqs).first(2));
  corrupt_rows(f, std::span(split).subspan(2 * width), width, std::span(positions).subspan(2),
               std::span(seqs).subspan(2));
  EXPECT_EQ(whole, split);
  double noise = 0, signal = 0;
  for (size_t i = 0; i < clean.size(); ++i) {
    noise += double(whole[i] - clean[i]) * (whole[i] - clean[i]);
    signal += double(clean[i]) * clean[i];
  }
  EXPECT_NEAR(std::sqrt(noise / signal), 0.01, 0.001);
}

// ---- a stage executor attaching commitments -----------------------------------------------

class ChunkSink : public StageSink {
 public:
  void forward(std::vector<StageChunk> chunks) override {
    std::lock_guard lock(mutex);
    for (auto& c : chunks) this->chunks.push_back(std::move(c));
  }
  void sampled(std::vector<SampledToken> tokens) override {
    std::lock_guard lock(mutex);
    for (auto& t : tokens) errors += t.error;
  }
  void released(RequestId, bool) override {}
  // Waits for chunks covering `positions` positions in all.
  bool wait(int positions) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex);
        int covered = 0;
        for (const auto& c : chunks) covered += int(c.tokens.size());
        if (covered >= positions) return true;
      }
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
  // The chunks' commitments joined in order (parsed from their wire form), and what they sent.
  void collect(StateCommitment& commitment, std::vector<float>& hidden) {
    std::lock_guard lock(mutex);
    for (const auto& c : chunks) {
      append_commitment(commitment, parse_commitment(c.commitment));
      hidden.insert(hidden.end(), c.hidden.begin(), c.hidden.end());
    }
  }
  std::mutex mutex;
  std::vector<StageChunk> chunks;
  std::string errors;
};

class CommittingStage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = test::temp_dir() + "committing_stage.gguf";
    SynthSpec spec;
    spec.n_layers = 4;
    spec.type = DType::Q8_0;
    write_synthetic_model(spec, path_);
  }

  // Stage [0, 2) runs a 20-token prompt and 4 decode steps with `fault`; the verifier replays
  // the 24 positions as one prefill on a healthy replica and checks the chunks' commitments.
  CommitmentVerdict run(StageFault fault) {
    auto shard = ModelShard::load(path_, {0, 2});
    ThreadPool pool(1);
    ChunkSink sink;
    StageConfig config;
    config.context_size = 128;
    config.kv_cache_tokens = 1024;
    config.commit_top_k = 4;
    config.fault = fault;
    std::vector<int32_t> tokens;
    for (int i = 0; i < 24; ++i) tokens.push_back(1 + (i * 29) % 250);
    StateCommitment commitment;
    std::vector<float> sent;
    {
      StageExecutor stage(shard, pool, config, sink);
      StageRequestSetup setup;
      setup.id = 1;
      setup.sampling.temperature = 0;
      stage.open(setup, std::vector<int32_t>(tokens.begin(), tokens.begin() + 20));
      for (int p = 20; p <= 24; ++p) {
        if (!sink.wait(p)) {
          ADD_FAILURE() << "no chunks for " << p << " positions " << sink.errors;
          return {};
        }
        if (p < 24) stage.append(1, p, tokens[p]);  // a decode step, as when a token came back
      }
    }
    EXPECT_EQ(sink.chunks.size(), 5u);  // the prompt, then one chunk per decode step
    sink.collect(commitment, sent);
    EXPECT_EQ(sink.errors, "");
    // The commitment is of what was sent, corrupt or not: a receiver could check that at once.
    EXPECT_TRUE(check_states(commitment, sent, CommitmentThresholds::exact()).ok);
    const std::vector<float> replay = test::run_stage(ModelShard::load(path_, {0, 2}), tokens, {}, {24}, 1);
    return check_states(commitment, replay);
  }

  static inline std::string path_;
};

TEST_F(CommittingStage, HonestChunksVerify) {
  const CommitmentVerdict v = run({});
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.max_row_error, 0);  // same kernels: bit for bit
}

TEST_F(CommittingStage, CorruptOutputFails) {
  const CommitmentVerdict v = run({StageFaultKind::Corrupt, 0.02, -1, 3});
  EXPECT_FALSE(v.ok);
  EXPECT_GT(v.max_window_median, CommitmentThresholds{}.window_median);
}

TEST_F(CommittingStage, SkippedLayerFails) {
  for (int layer : {0, 1}) {
    const CommitmentVerdict v = run({StageFaultKind::SkipLayer, 0, layer, 0});
    EXPECT_FALSE(v.ok) << "layer " << layer;
    EXPECT_EQ(v.first_failing_row, 0) << "layer " << layer;
  }
}

TEST_F(CommittingStage, NoCommitmentUnlessAsked) {
  auto shard = ModelShard::load(path_, {0, 2});
  ThreadPool pool(1);
  ChunkSink sink;
  StageConfig config;
  config.context_size = 64;
  config.kv_cache_tokens = 512;
  StageExecutor stage(shard, pool, config, sink);
  StageRequestSetup setup;
  setup.id = 1;
  stage.open(setup, {1, 2, 3});
  ASSERT_TRUE(sink.wait(3));
  std::lock_guard lock(sink.mutex);
  ASSERT_EQ(sink.chunks.size(), 1u);
  EXPECT_TRUE(sink.chunks[0].commitment.empty());
}

}  // namespace
}  // namespace px
