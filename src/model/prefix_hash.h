#pragma once
// Content hashes of KV-cache blocks, for prefix caching. A full block's hash chains its parent
// block's hash with its own token ids, so equal hashes stand for equal whole prefixes (up to
// 64-bit collisions, which the block manager rules out by comparing tokens and parents). The
// hash depends only on content, never on block ids, so it is stable across nodes and restarts:
// a router may compare the hashes of a prompt with those a node reports holding.
#include <cstdint>
#include <span>
#include <vector>

namespace px {

// The "parent hash" of a sequence's first block.
inline constexpr uint64_t kPrefixHashRoot = 0x6a09e667f3bcc909ULL;

// Hash of one block of token ids (any length; the length is part of the hash) given the
// hash of the block before it (kPrefixHashRoot for the first block).
uint64_t hash_token_block(uint64_t parent_hash, std::span<const int32_t> tokens);

// Chained hashes of the full blocks of `tokens`: element i covers tokens [0, (i+1)*block_size).
// A trailing partial block has no hash (its content is not final).
std::vector<uint64_t> prefix_block_hashes(std::span<const int32_t> tokens, int block_size);

}  // namespace px
