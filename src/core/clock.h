#pragma once
// Wall-clock time as peers exchange it: microseconds since the Unix epoch.
#include <chrono>
#include <cstdint>

namespace px {

inline int64_t unix_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace px
