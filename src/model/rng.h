#pragma once
// A small seeded generator for synthetic weights: SplitMix64 for uniform bits, Box-Muller
// for normals. Written out by hand (not <random>'s distributions) so that a seed gives the
// same values with every standard library, which keeps synthetic models byte-identical.
#include <cmath>
#include <cstdint>
#include <string_view>

namespace px {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Sub-seed for one named stream (e.g. a tensor): a tensor's values then depend only on the
// model seed and its own name, not on which other tensors were generated before it.
inline uint64_t sub_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  uint64_t state = seed ^ h;
  return splitmix64(state);
}

class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : state_(seed) {}

  // Uniform in (0, 1): 53 random bits, never exactly 0 so log() below stays finite.
  double uniform() {
    return (static_cast<double>(splitmix64(state_) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }

  // Standard normal; Box-Muller yields two values per pair of uniforms, the second is kept.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double theta = 2.0 * 3.14159265358979323846 * uniform();
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

  float normal(float mean, float stddev) {
    return static_cast<float>(mean + stddev * normal());
  }

 private:
  uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace px
