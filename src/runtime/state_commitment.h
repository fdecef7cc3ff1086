#pragma once
// Verifiable stage outputs: a compact commitment to the hidden states a pipeline stage sends on,
// which a verifier checks later by replaying the same positions through another replica of the
// stage (one prefill) — the idea of TOPLOC (Ong et al., ICML 2025), applied at every stage
// boundary. See docs/VERIFICATION.md for the calibration behind the thresholds.
//
// What is committed, per row (one position): the k entries of largest |value|, as (index, value
// rounded to f16), largest first. Large entries are the ones float noise moves least in relative
// terms, and a different model, prompt or precision moves them (and their ranking) a lot.
//
// The check recomputes the rows and, per row, looks at the recomputed values at the committed
// indices: the error beyond f16 rounding, relative to the committed value, and whether the
// committed indices are still (up to a tolerance) the k largest. A row far off fails on its own
// (another model, a skipped layer, a changed token: the first failing row says where). Honest
// noise is sporadic — a tiny f32 difference on another SIMD target flips an int8 activation
// rounding and moves a whole row by up to ~1% on quantized models — while a different
// quantization or a perturbation moves every row a little; so subtle changes are judged on the
// median error over windows of rows, not on single values.
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace px {

struct StateCommitment {
  int32_t width = 0;              // elements per row (n_embd), <= 65536
  int32_t k = 0;                  // entries per row
  std::vector<uint16_t> indices;  // [rows, k], by |value| descending
  std::vector<uint16_t> values;   // [rows, k], f16 bits
  int rows() const { return k > 0 ? int(indices.size() / size_t(k)) : 0; }
};

constexpr int kDefaultCommitTopK = 4;  // 16 bytes a row: 512 per 32 positions (+16 header)
constexpr int kMaxCommitTopK = 64;
constexpr int kMaxCommitWidth = 65536;

// Commits to `hidden` [rows, width] (f32, row-major). Throws px::Error for a k outside
// [1, min(width, kMaxCommitTopK)], a width over kMaxCommitWidth, a size that is not a whole
// number of rows, or a value that is not finite (nothing honest produces one).
StateCommitment commit_states(std::span<const float> hidden, int width, int k = kDefaultCommitTopK);

// The rows [begin, begin + count) of a commitment (a chunk's share of a longer one).
StateCommitment slice_commitment(const StateCommitment& c, int begin, int count);
// Appends b's rows to a (same width and k), e.g. a request's chunks in order.
void append_commitment(StateCommitment& a, const StateCommitment& b);

// Wire form: "PXSC", version 1, k (u8), 2 reserved bytes, width (u32), rows (u32), then per row
// k x (index u16, value f16), all little-endian.
std::vector<uint8_t> serialize_commitment(const StateCommitment& c);
// Parses what a peer sent, validating everything: magic, version, k, width, the row count
// against the size (and max_rows), each index < width and distinct within its row, each value
// finite and the values of a row in non-increasing |value|. Throws px::Error saying what is wrong.
StateCommitment parse_commitment(std::span<const uint8_t> bytes, int max_rows = 1 << 20);

// Defaults: a verifier on any CPU. Calibrated on synthetic llama / qwen2 / qwen3 models (F32,
// F16, Q8_0, Q4_0) replayed on every SIMD target (docs/VERIFICATION.md): the worst honest run
// had a row error of 0.0077 and a window median of 0.00101; the mildest dishonest change (Q8_0
// weights in place of F16, or back) a window median of 0.00163, every other one a row error
// of 0.45 or more. The thresholds sit between those.
struct CommitmentThresholds {
  // A row fails when the error of any committed entry exceeds this (relative to the value,
  // beyond f16 rounding) or when a committed index is not within this factor of the k-th
  // largest recomputed |value|.
  double row_error = 0.05;
  // A window of rows fails when the median entry error over it exceeds this.
  double window_median = 0.0013;
  int window_rows = 32;
  // Windows are judged on the median only with at least this many rows (a shorter tail joins
  // the window before it; a commitment of fewer rows is judged per row only).
  int min_window_rows = 16;

  // A verifier running the worker's kernels (the same SIMD target): threads, batch shapes,
  // prefill chunking and the wire do not change a bit of the output there, so every committed
  // value must round to what was committed and nothing more is tolerated.
  static CommitmentThresholds exact() { return {0.0, 0.0, 32, 16}; }
  // A verifier that could not rebuild the stage's input bit for bit (its upstream ran on another
  // SIMD target, and the link rounded): a value near a rounding boundary rounds the other way
  // and moves windows as much as a subtle change does (docs/VERIFICATION.md), so only the row
  // test is kept. Gross changes still fail it.
  CommitmentThresholds rows_only() const {
    CommitmentThresholds t = *this;
    t.window_median = std::numeric_limits<double>::infinity();
    return t;
  }
};

struct CommitmentVerdict {
  bool ok = true;
  int first_failing_row = -1;  // a failing row, or the first row of a failing window
  std::string reason;          // empty when ok
  // Measured over all rows:
  double max_row_error = 0;        // worst entry error
  double max_window_median = 0;    // worst window median (0 when no window was judged)
  double median_error = 0;         // over all entries
  int index_misses = 0;            // committed indices not among the recomputed top k
  int windows_judged = 0;
};

// Checks a commitment against the replayed rows `recomputed` [rows, width]. A shape mismatch
// (width, row count) or a non-finite recomputed value is a failed verdict, not an exception.
CommitmentVerdict check_states(const StateCommitment& c, std::span<const float> recomputed,
                               const CommitmentThresholds& thresholds = {});

}  // namespace px
