#include "kernels/cpu/simd.h"

#include "kernels/cpu/simd_config.h"
// Must follow simd_config.h: HWY_TARGETS below is the kernels' target set.
#include <hwy/targets.h>

namespace px {

std::vector<int64_t> kernel_simd_targets() {
  std::vector<int64_t> targets;
  for (int64_t t = hwy::SupportedTargets() & HWY_TARGETS; t != 0; t &= t - 1) {
    targets.push_back(t & -t);  // lowest bit first: Highway orders better targets lower
  }
  return targets;
}

std::string active_simd_target() {
  const int64_t t = hwy::SupportedTargets() & HWY_TARGETS;
  return t ? hwy::TargetName(t & -t) : "none";
}

}  // namespace px
