#include "swarm/input_digest.h"

#include <bit>

#include "core/sha256.h"

namespace px::swarm {

std::vector<uint8_t> input_digest(std::span<const float> rows) {
  static_assert(std::endian::native == std::endian::little, "digests are of little-endian f32");
  Sha256 hash;
  hash.update(rows.data(), rows.size_bytes());
  const Sha256Digest d = hash.finish();
  return {d.begin(), d.end()};
}

}  // namespace px::swarm
