#pragma once
// Makes the kernels dispatch to one Highway target for the lifetime of the object (tests run
// every compiled target this CPU supports in turn).
#include <hwy/targets.h>

#include <cstdint>

namespace px {

class ForceTarget {
 public:
  explicit ForceTarget(int64_t target) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ~ForceTarget() {
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ForceTarget(const ForceTarget&) = delete;
  ForceTarget& operator=(const ForceTarget&) = delete;
};

}  // namespace px
