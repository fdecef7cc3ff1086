#include "model/prefix_hash.h"

#include "core/error.h"

namespace px {
namespace {

// A bijective 64-bit finalizer (xor-shift / multiply rounds, splitmix64's constants): every input
// bit affects every output bit, so chaining it over the words of a block mixes them well.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

}  // namespace

uint64_t hash_token_block(uint64_t parent_hash, std::span<const int32_t> tokens) {
  // Seeding with the length keeps blocks that differ only by trailing zero tokens apart.
  uint64_t h = mix64(parent_hash ^ (kGolden * (static_cast<uint64_t>(tokens.size()) + 1)));
  size_t i = 0;
  for (; i + 1 < tokens.size(); i += 2) {
    const uint64_t word = static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) |
                          (static_cast<uint64_t>(static_cast<uint32_t>(tokens[i + 1])) << 32);
    h = mix64(h ^ word) + kGolden;
  }
  if (i < tokens.size()) h = mix64(h ^ static_cast<uint32_t>(tokens[i])) + kGolden;
  return mix64(h);
}

std::vector<uint64_t> prefix_block_hashes(std::span<const int32_t> tokens, int block_size) {
  if (block_size <= 0) fail("prefix_block_hashes: block_size is {}, expected > 0", block_size);
  const size_t bs = static_cast<size_t>(block_size);
  std::vector<uint64_t> hashes;
  hashes.reserve(tokens.size() / bs);
  uint64_t parent = kPrefixHashRoot;
  for (size_t begin = 0; begin + bs <= tokens.size(); begin += bs) {
    parent = hash_token_block(parent, tokens.subspan(begin, bs));
    hashes.push_back(parent);
  }
  return hashes;
}

}  // namespace px
