#include "runtime/state_commitment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "core/fp16.h"

namespace px {

namespace {

constexpr char kMagic[4] = {'P', 'X', 'S', 'C'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kEntryBytes = 4;  // index u16 + value f16
constexpr uint16_t kF16Max = 0x7bff;

bool f16_finite(uint16_t bits) { return (bits & 0x7c00) != 0x7c00; }

// Distance from an f16 value to its neighbour away from zero: the rounding cell reaches half of
// it on each side (at a power of two the cell below is half as wide: this errs on the lenient side).
float f16_spacing(uint16_t bits) {
  const uint16_t magnitude = bits & 0x7fff;
  if (magnitude >= kF16Max) return 32.0f;  // 65504's spacing
  return fp16_to_f32(uint16_t(magnitude + 1)) - fp16_to_f32(magnitude);
}

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(uint8_t(v));
  out.push_back(uint8_t(v >> 8));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint16_t get_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t get_u32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

void check_shape(int width, int k) {
  if (width < 1 || width > kMaxCommitWidth) fail("commitment: row width {} is outside 1..{}", width, kMaxCommitWidth);
  if (k < 1 || k > std::min(width, kMaxCommitTopK)) {
    fail("commitment: k = {} is outside 1..{} (rows of {} values)", k, std::min(width, kMaxCommitTopK), width);
  }
}

// The error of one recomputed value against its committed f16 value: how far it lies outside
// the committed value's rounding cell, relative to the committed value. 0 when it rounds to it.
double entry_error(float recomputed, uint16_t committed) {
  const float v = fp16_to_f32(committed);
  const double outside = std::abs(double(recomputed) - v) - 0.5 * f16_spacing(committed);
  return std::max(0.0, outside) / std::max(std::abs(double(v)), 1e-30);
}

double median(std::vector<double>& values) {
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  return values[mid];
}

}  // namespace

StateCommitment commit_states(std::span<const float> hidden, int width, int k) {
  check_shape(width, k);
  if (hidden.size() % size_t(width) != 0) fail("commitment: {} values are not whole rows of {}", hidden.size(), width);
  const int rows = int(hidden.size() / size_t(width));
  StateCommitment c;
  c.width = width;
  c.k = k;
  c.indices.resize(size_t(rows) * k);
  c.values.resize(size_t(rows) * k);
  std::vector<uint16_t> order(width);
  for (int r = 0; r < rows; ++r) {
    const float* x = hidden.data() + size_t(r) * width;
    for (int i = 0; i < width; ++i) {
      if (!std::isfinite(x[i])) fail("commitment: row {} holds a non-finite value at index {}", r, i);
    }
    std::iota(order.begin(), order.end(), uint16_t(0));
    // Largest |value| first; equal magnitudes by index, so the choice is deterministic.
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint16_t a, uint16_t b) {
      const float fa = std::abs(x[a]), fb = std::abs(x[b]);
      return fa != fb ? fa > fb : a < b;
    });
    for (int j = 0; j < k; ++j) {
      const uint16_t bits = f32_to_fp16(x[order[j]]);
      if (!f16_finite(bits)) fail("commitment: row {} value {} at index {} is outside the f16 range", r, x[order[j]], order[j]);
      c.indices[size_t(r) * k + j] = order[j];
      c.values[size_t(r) * k + j] = bits;
    }
  }
  return c;
}

StateCommitment slice_commitment(const StateCommitment& c, int begin, int count) {
  if (begin < 0 || count < 0 || begin + count > c.rows()) {
    fail("commitment: rows [{}, {}) are outside its {} rows", begin, begin + count, c.rows());
  }
  StateCommitment s;
  s.width = c.width;
  s.k = c.k;
  const size_t from = size_t(begin) * c.k, to = size_t(begin + count) * c.k;
  s.indices.assign(c.indices.begin() + from, c.indices.begin() + to);
  s.values.assign(c.values.begin() + from, c.values.begin() + to);
  return s;
}

void append_commitment(StateCommitment& a, const StateCommitment& b) {
  if (a.k == 0 && a.indices.empty()) {
    a = b;
    return;
  }
  if (a.width != b.width || a.k != b.k) {
    fail("commitment: cannot join rows of width {} k {} to rows of width {} k {}", b.width, b.k, a.width, a.k);
  }
  a.indices.insert(a.indices.end(), b.indices.begin(), b.indices.end());
  a.values.insert(a.values.end(), b.values.begin(), b.values.end());
}

std::vector<uint8_t> serialize_commitment(const StateCommitment& c) {
  check_shape(c.width, c.k);
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.reserve(kHeaderBytes + c.indices.size() * kEntryBytes);
  out.push_back(kVersion);
  out.push_back(uint8_t(c.k));
  put_u16(out, 0);
  put_u32(out, uint32_t(c.width));
  put_u32(out, uint32_t(c.rows()));
  for (size_t i = 0; i < c.indices.size(); ++i) {
    put_u16(out, c.indices[i]);
    put_u16(out, c.values[i]);
  }
  return out;
}

StateCommitment parse_commitment(std::span<const uint8_t> bytes, int max_rows) {
  if (bytes.size() < kHeaderBytes) fail("commitment: {} bytes is shorter than its {}-byte header", bytes.size(), kHeaderBytes);
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, 4) != 0) fail("commitment: bad magic (not a PXSC commitment)");
  if (p[4] != kVersion) fail("commitment: version {} is not supported (expected {})", p[4], kVersion);
  const int k = p[5];
  if (get_u16(p + 6) != 0) fail("commitment: reserved header bytes are not zero");
  const uint32_t width = get_u32(p + 8), rows = get_u32(p + 12);
  if (width < 1 || width > uint32_t(kMaxCommitWidth)) fail("commitment: row width {} is outside 1..{}", width, kMaxCommitWidth);
  check_shape(int(width), k);
  if (rows > uint32_t(std::max(max_rows, 0))) fail("commitment: {} rows exceed the limit of {}", rows, max_rows);
  const uint64_t want = kHeaderBytes + uint64_t(rows) * uint64_t(k) * kEntryBytes;
  if (bytes.size() != want) {
    fail("commitment: header says {} rows of k = {} ({} bytes) but {} bytes arrived", rows, k, want, bytes.size());
  }
  StateCommitment c;
  c.width = int(width);
  c.k = k;
  c.indices.resize(size_t(rows) * k);
  c.values.resize(size_t(rows) * k);
  const uint8_t* e = p + kHeaderBytes;
  std::vector<uint8_t> seen(width, 0);
  for (uint32_t r = 0; r < rows; ++r) {
    float previous = INFINITY;
    for (int j = 0; j < k; ++j, e += kEntryBytes) {
      const uint16_t index = get_u16(e), value = get_u16(e + 2);
      if (index >= width) fail("commitment: row {} entry {} has index {} outside the row of {}", r, j, index, width);
      if (seen[index]) fail("commitment: row {} commits index {} twice", r, index);
      if (!f16_finite(value)) fail("commitment: row {} entry {} is not a finite value", r, j);
      const float magnitude = std::abs(fp16_to_f32(value));
      if (magnitude > previous) fail("commitment: row {} entries are not in order of decreasing magnitude", r);
      previous = magnitude;
      seen[index] = 1;
      c.indices[size_t(r) * k + j] = index;
      c.values[size_t(r) * k + j] = value;
    }
    for (int j = 0; j < k; ++j) seen[c.indices[size_t(r) * k + j]] = 0;
  }
  return c;
}

CommitmentVerdict check_states(const StateCommitment& c, std::span<const float> recomputed,
                               const CommitmentThresholds& t) {
  CommitmentVerdict v;
  // Keeps the earliest failure. Rows are judged before windows, and a window failure is
  // reported only when no row failed on its own: a row failure says exactly where, a window's
  // median only roughly.
  auto reject = [&](int row, std::string reason) {
    if (!v.ok && row >= v.first_failing_row) return;
    v.ok = false;
    v.first_failing_row = row;
    v.reason = std::move(reason);
  };
  const int rows = c.rows(), k = c.k, width = c.width;
  if (width < 1 || k < 1 || c.indices.size() != c.values.size() || c.indices.size() != size_t(rows) * k) {
    reject(0, "the commitment is malformed");
    return v;
  }
  if (recomputed.size() != size_t(rows) * width) {
    reject(0, fmt::format("the commitment has {} rows of {} values but {} values were recomputed ({} rows)", rows,
                          width, recomputed.size(), double(recomputed.size()) / width));
    return v;
  }
  std::vector<double> errors(size_t(rows) * k);
  std::vector<float> magnitudes(width);
  for (int r = 0; r < rows; ++r) {
    const float* x = recomputed.data() + size_t(r) * width;
    for (int i = 0; i < width; ++i) {
      if (!std::isfinite(x[i])) {
        reject(r, fmt::format("row {}: the replay produced a non-finite value at index {}", r, i));
        return v;
      }
      magnitudes[i] = std::abs(x[i]);
    }
    std::nth_element(magnitudes.begin(), magnitudes.begin() + (k - 1), magnitudes.end(), std::greater<float>());
    const float kth = magnitudes[k - 1];  // the k-th largest recomputed |value|
    for (int j = 0; j < k; ++j) {
      const size_t e = size_t(r) * k + j;
      const uint16_t index = c.indices[e];
      if (index >= width) {
        reject(r, fmt::format("row {}: index {} is outside the row", r, index));
        return v;
      }
      const double error = entry_error(x[index], c.values[e]);
      errors[e] = error;
      v.max_row_error = std::max(v.max_row_error, error);
      if (error > t.row_error) {
        reject(r, fmt::format("row {}: value {} at index {} was committed as {} (error {:.3g} > {:.3g})", r, x[index],
                              index, fp16_to_f32(c.values[e]), error, t.row_error));
      }
      if (std::abs(x[index]) < kth * (1 - t.row_error)) {
        ++v.index_misses;
        reject(r, fmt::format("row {}: committed index {} ({}) is not among the {} largest (the {}th is {})", r, index,
                              x[index], k, k, kth));
      }
    }
  }
  const bool row_failed = !v.ok;
  // Windows of rows, judged on their median error (a short tail joins the window before it).
  const int size = std::max(1, t.window_rows);
  for (int begin = 0; begin < rows && rows >= t.min_window_rows;) {
    int end = std::min(rows, begin + size);
    if (rows - end < t.min_window_rows) end = rows;
    std::vector<double> window(errors.begin() + size_t(begin) * k, errors.begin() + size_t(end) * k);
    const double m = median(window);
    ++v.windows_judged;
    v.max_window_median = std::max(v.max_window_median, m);
    if (m > t.window_median && !row_failed) {
      // Where it starts: the first row of the window whose own median is over the threshold
      // (a prompt changed mid-window leaves the rows before it exact).
      int first = begin;
      for (int r = begin; r < end; ++r) {
        std::vector<double> row(errors.begin() + size_t(r) * k, errors.begin() + size_t(r + 1) * k);
        if (median(row) > t.window_median) {
          first = r;
          break;
        }
      }
      reject(first, fmt::format("rows {}..{}: median error {:.3g} > {:.3g} (from row {})", begin, end - 1, m,
                                t.window_median, first));
    }
    begin = end;
  }
  if (!errors.empty()) {
    std::vector<double> all = errors;
    v.median_error = median(all);
  }
  return v;
}

}  // namespace px
