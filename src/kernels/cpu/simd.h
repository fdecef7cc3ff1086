#pragma once
// Which SIMD targets the kernels were compiled for, for tests and diagnostics.
#include <cstdint>
#include <string>
#include <vector>

namespace px {

// Highway targets (HWY_AVX2, HWY_EMU128, ...) that are both compiled into the kernels and
// supported by this CPU, best first. Tests pass each to hwy::SetSupportedTargetsForTest.
std::vector<int64_t> kernel_simd_targets();

// Name of the target the kernels dispatch to now, e.g. "AVX3_DL".
std::string active_simd_target();

}  // namespace px
