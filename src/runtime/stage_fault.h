#pragma once
// A test aid that plays a dishonest worker, so that the verification of stage outputs
// (runtime/state_commitment.h) can be exercised against real attacks. Off unless asked for;
// with kind None the executor does one comparison per step.
//
//   corrupt      the stage's output hidden states get Gaussian noise, std = scale x the row's
//                RMS, keyed by (seed, sequence, position, element) so that batching does not
//                change it (a worker cutting corners in its kernels, or tampering)
//   skip_layer   one layer of the stage's range is not computed (a worker saving time)
//   wrong_model  nothing here: the worker loads another model file (another seed, another
//                quantization) in place of the one the swarm agreed on; the loader does that
//   no_commit    the stage sends no commitments (a worker hoping to go unchecked)
#include <cstdint>
#include <span>
#include <string_view>

#include "model/model_config.h"

namespace px {

enum class StageFaultKind { None, Corrupt, SkipLayer, WrongModel, NoCommit };

struct StageFault {
  StageFaultKind kind = StageFaultKind::None;
  double corrupt_scale = 0.01;  // corrupt: noise std relative to each row's RMS
  int skip_layer = -1;          // skip_layer: absolute layer within the range; -1: the range's last
  uint64_t seed = 0;
};

std::string_view stage_fault_name(StageFaultKind kind);  // none | corrupt | skip_layer | wrong_model | no_commit
// Throws px::Error naming the accepted words.
StageFaultKind parse_stage_fault(std::string_view name);

// The layer a SkipLayer fault leaves out of `range`, or -1 for any other kind. Throws px::Error
// when the configured layer lies outside the range.
int faulty_skipped_layer(const StageFault& fault, LayerRange range);

// Corrupt: adds the fault's noise to `rows` [n, width] in place; row i is position positions[i]
// of sequence seq_ids[i].
void corrupt_rows(const StageFault& fault, std::span<float> rows, int width, std::span<const int32_t> positions,
                  std::span<const int32_t> seq_ids);

}  // namespace px
