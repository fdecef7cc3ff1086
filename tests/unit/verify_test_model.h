#pragma once
// The small quantized model the verification tests run (last_stage_check_test,
// swarm_verify_dataplane_test): qwen2, 6 layers of 64, Q8_0 — cheap, and quantized, so that
// another SIMD target's kernels really differ.
#include "model/synth.h"

namespace px::test {

inline SynthSpec verify_test_spec() {
  SynthSpec spec;
  spec.arch = "qwen2";
  spec.n_layers = 6;
  spec.n_embd = 64;
  spec.type = DType::Q8_0;
  return spec;
}

}  // namespace px::test
