#include "runtime/stage_fault.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "sampling/sampler.h"

namespace px {

std::string_view stage_fault_name(StageFaultKind kind) {
  switch (kind) {
    case StageFaultKind::None: return "none";
    case StageFaultKind::Corrupt: return "corrupt";
    case StageFaultKind::SkipLayer: return "skip_layer";
    case StageFaultKind::WrongModel: return "wrong_model";
    case StageFaultKind::NoCommit: return "no_commit";
  }
  return "none";
}

StageFaultKind parse_stage_fault(std::string_view name) {
  for (StageFaultKind k : {StageFaultKind::None, StageFaultKind::Corrupt, StageFaultKind::SkipLayer,
                           StageFaultKind::WrongModel, StageFaultKind::NoCommit}) {
    if (name == stage_fault_name(k)) return k;
  }
  fail("unknown stage fault '{}' (expected none, corrupt, skip_layer, wrong_model or no_commit)", name);
}

int faulty_skipped_layer(const StageFault& fault, LayerRange range) {
  if (fault.kind != StageFaultKind::SkipLayer) return -1;
  const int layer = fault.skip_layer < 0 ? range.end - 1 : fault.skip_layer;
  if (layer < range.begin || layer >= range.end) {
    fail("skip_layer fault: layer {} is outside the stage's layers [{}, {})", layer, range.begin, range.end);
  }
  return layer;
}

void corrupt_rows(const StageFault& fault, std::span<float> rows, int width, std::span<const int32_t> positions,
                  std::span<const int32_t> seq_ids) {
  const size_t n = positions.size();
  if (rows.size() != n * size_t(width) || seq_ids.size() != n) {
    fail("corrupt fault: {} values for {} rows of {}", rows.size(), n, width);
  }
  for (size_t r = 0; r < n; ++r) {
    float* x = rows.data() + r * width;
    double squares = 0;
    for (int i = 0; i < width; ++i) squares += double(x[i]) * x[i];
    const double sigma = fault.corrupt_scale * std::sqrt(squares / width);
    // One uniform stream per (sequence, position); Box-Muller over pairs of its draws.
    const uint64_t stream = uint64_t(uint32_t(seq_ids[r])) << 32 | uint32_t(positions[r]);
    for (int i = 0; i < width; ++i) {
      const double u1 = counter_uniform(fault.seed, stream, 2 * uint64_t(i));
      const double u2 = counter_uniform(fault.seed, stream, 2 * uint64_t(i) + 1);
      const double normal = std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * std::numbers::pi * u2);
      x[i] += float(sigma * normal);
    }
  }
}

}  // namespace px
