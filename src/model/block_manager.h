#pragma once
// Paged KV cache manager: decides *where* each sequence's KV lives; it owns no tensors.
//
// The KV storage (owned elsewhere) is a pool of `n_blocks` blocks of `block_size` token slots,
// per layer K and V tensors shaped [n_blocks, block_size, kv_dim]. Each sequence has a block
// table; the KV of its token at position p lives in
//     block = block_table(seq)[p / block_size],  offset = p % block_size
// (see slot()). A flat slot index for a [n_blocks * block_size, kv_dim] view is
// block * block_size + offset.
//
// Prefix caching: a *full* block whose KV has been computed (mark_computed) is registered under
// a hash of its whole token prefix (prefix_hash.h). A later sequence whose prompt starts with the
// same tokens reuses it (ref count > 1) instead of computing it again. Hits are verified by
// comparing the block's tokens and its parent block, so a 64-bit hash collision never shares a
// wrong block. A freed sequence's registered blocks stay cached (ref 0) in an LRU list and are
// evicted, least recently released first, only when no free block is left. Shared blocks are
// always full, so appending never writes into a shared block (no copy-on-write): a partial last
// block is private to its sequence.
//
// Every block is in exactly one state:
//   Used   — ref > 0: in the block table of at least one live sequence;
//   Cached — ref 0, holds registered content, in the LRU list, can be reused or evicted;
//   Free   — ref 0, no content worth keeping.
// free_blocks() counts Free + Cached: what a new allocation can draw on.
//
// Typical use by a scheduler and forward pass, one engine step:
//   if (bm.can_allocate(prompt)) { int cached = bm.allocate(id, prompt); /* compute from cached */ }
//   ... forward pass writes KV of positions [computed, computed + chunk) via slot() ...
//   bm.mark_computed(id, computed + chunk);   // may re-point full blocks: re-read block_table
//   if (!bm.append(id, {sampled})) { /* preempt someone: bm.free(victim), retry */ }
//   bm.free(id) when the request finishes or is preempted (recompute later).
// Not thread-safe: the scheduler's thread owns it.
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

namespace px {

// (parent block hash, block tokens) -> hash. Replaceable for tests that force collisions.
using BlockHashFn = std::function<uint64_t(uint64_t parent_hash, std::span<const int32_t> tokens)>;

struct BlockManagerConfig {
  int n_blocks = 0;
  int block_size = 16;
  bool prefix_caching = true;
  // can_allocate() leaves this many blocks for running sequences to grow into, so admitting a
  // new prompt does not immediately force a preemption.
  int watermark_blocks = 0;
  // Empty: hash_token_block (prefix_hash.h).
  BlockHashFn block_hash;
};

// Where the KV of one token lives in the pool.
struct KvSlot {
  int32_t block = 0;
  int32_t offset = 0;  // token slot inside the block, < block_size
};

enum class BlockState { Free, Cached, Used };

struct BlockCounts {
  int free = 0;    // unreferenced, no content
  int cached = 0;  // unreferenced, registered content (evictable)
  int used = 0;    // referenced by live sequences
};

struct BlockManagerStats {
  int64_t prefix_query_tokens = 0;  // prompt tokens passed to allocate()
  int64_t prefix_hit_tokens = 0;    // of those, tokens found cached (allocate()'s return values)
  int64_t evictions = 0;            // cached blocks whose content was dropped to make room
  int64_t deduplicated_blocks = 0;  // computed blocks replaced by an identical cached block
  double prefix_hit_rate() const {
    return prefix_query_tokens == 0 ? 0.0
                                    : static_cast<double>(prefix_hit_tokens) / prefix_query_tokens;
  }
};

class BlockManager {
 public:
  // Throws px::Error for n_blocks <= 0, block_size <= 0 or a negative watermark.
  explicit BlockManager(BlockManagerConfig config);

  // --- admission -----------------------------------------------------------------------------
  // Blocks a new sequence with this prompt would draw from free_blocks(): blocks not found in
  // the prefix cache plus cached hits that are currently unreferenced (they leave the evictable
  // pool). free_blocks() drops by exactly this much on allocate().
  int blocks_needed(std::span<const int32_t> tokens) const;
  // blocks_needed(tokens) <= free_blocks() - watermark_blocks. A prompt with
  // blocks_for_tokens(size) > n_blocks() can never be admitted: reject it up front.
  bool can_allocate(std::span<const int32_t> tokens) const;
  // Leading prompt tokens allocate() would report cached (see allocate()); no side effects.
  int cached_prefix_tokens(std::span<const int32_t> tokens) const;

  // --- sequence lifetime ---------------------------------------------------------------------
  // Creates sequence `seq` holding `tokens` (the prompt, at least one token). Returns how many
  // leading tokens already have their KV in the cache and need not be computed: a multiple of
  // block_size, at most tokens.size() - 1 rounded down to a block (the last prompt token is
  // always computed, to get logits). Throws px::Error when seq already exists, tokens is empty,
  // or there are not enough blocks (check can_allocate() first); nothing changes then.
  int allocate(int64_t seq, std::span<const int32_t> tokens);
  // Appends tokens (generated ones, or the next part of a prompt) and grows the block table at
  // block boundaries. Returns false, changing nothing, when the blocks cannot be had: the
  // scheduler then preempts a sequence and retries.
  bool append(int64_t seq, std::span<const int32_t> tokens);
  bool can_append(int64_t seq, int n_tokens) const;
  // The KV of tokens [0, n_tokens) of seq now exists. Full blocks in that range become cacheable
  // (registered by hash), never before. A block whose content is already cached in another block
  // is replaced in the table by that block (the duplicate returns to the free pool), so callers
  // must re-read block_table() after this call. n_tokens <= num_tokens(seq); a value below an
  // earlier one is ignored.
  void mark_computed(int64_t seq, int n_tokens);
  // Drops the sequence: its blocks lose a reference; registered ones that reach 0 join the LRU
  // cache (the last block first, so a prefix outlives its tails), the others become free.
  // Throws px::Error for an unknown seq.
  void free(int64_t seq);

  // --- queries -------------------------------------------------------------------------------
  bool has_sequence(int64_t seq) const;
  // Block ids covering the sequence's tokens: exactly ceil(num_tokens / block_size) entries.
  // Throws px::Error for an unknown seq (as do all per-sequence queries).
  const std::vector<int32_t>& block_table(int64_t seq) const;
  const std::vector<int32_t>& tokens(int64_t seq) const;
  int num_tokens(int64_t seq) const;
  int num_computed(int64_t seq) const;  // largest n passed to mark_computed (or cached prefix)
  // Where position pos (0 <= pos < num_tokens) of seq lives: block_table[pos / block_size],
  // offset pos % block_size.
  KvSlot slot(int64_t seq, int pos) const;

  int free_blocks() const;  // Free + Cached
  double usage() const;     // Used / n_blocks
  BlockCounts counts() const;
  BlockState block_state(int32_t block) const;
  int ref_count(int32_t block) const;
  int blocks_for_tokens(int n_tokens) const;  // ceil(n_tokens / block_size)
  int n_blocks() const { return config_.n_blocks; }
  int block_size() const { return config_.block_size; }
  const BlockManagerStats& stats() const { return stats_; }

  // Verifies every internal invariant (ref counts match the tables, states partition the pool,
  // LRU list and hash index agree with the blocks, table sizes); throws px::Error naming the
  // first violation. O(n_blocks + tokens): for tests and debug checks.
  void check_invariants() const;

 private:
  struct Block {
    int32_t ref = 0;
    bool registered = false;  // content is in the hash index (and in block_tokens_)
    bool in_lru = false;
    uint64_t hash = 0;
    // The registered block this one's prefix continues (-1 for a first block), and that
    // block's generation then: a parent that was evicted and reused no longer matches.
    int32_t parent = -1;
    uint32_t parent_generation = 0;
    uint32_t generation = 0;  // bumped whenever the block is handed out for new content
    int32_t lru_prev = -1;
    int32_t lru_next = -1;
  };
  struct Sequence {
    std::vector<int32_t> tokens;
    std::vector<int32_t> table;
    // Chained hashes of the leading blocks that are registered (own or shared): block i of the
    // table for i < hashes.size() is the registered block for that prefix.
    std::vector<uint64_t> hashes;
    int n_computed = 0;
  };
  struct PrefixMatch {
    std::vector<int32_t> blocks;  // registered blocks matching the leading full blocks
    std::vector<uint64_t> hashes;
    int unreferenced = 0;         // of those, how many are Cached (ref 0)
  };

  uint64_t hash_block(uint64_t parent_hash, std::span<const int32_t> tokens) const;
  std::span<const int32_t> registered_tokens(int32_t block) const;
  // The registered block with this hash, tokens and parent block (-1: first block), or -1.
  int32_t find_cached(uint64_t hash, std::span<const int32_t> tokens, int32_t parent) const;
  PrefixMatch match_prefix(std::span<const int32_t> tokens) const;
  const Sequence& get(int64_t seq) const;
  Sequence& get(int64_t seq);

  int32_t acquire_block();  // a Free block, else the LRU Cached one (evicted); ref becomes 1
  void retain(int32_t block);
  void release(int32_t block);
  void evict(int32_t block);
  void register_block(int32_t block, uint64_t hash, std::span<const int32_t> tokens, int32_t parent);
  void register_computed_blocks(Sequence& seq);
  void lru_push_back(int32_t block);
  void lru_remove(int32_t block);

  BlockManagerConfig config_;
  std::vector<Block> blocks_;
  std::vector<int32_t> block_tokens_;  // [n_blocks, block_size]: tokens of registered blocks
  std::vector<int32_t> free_list_;     // Free blocks, used as a stack
  int32_t lru_head_ = -1;              // least recently released Cached block: evicted first
  int32_t lru_tail_ = -1;
  int n_cached_ = 0;
  int n_used_ = 0;
  std::unordered_multimap<uint64_t, int32_t> cache_index_;  // hash -> registered block
  std::unordered_map<int64_t, Sequence> seqs_;
  BlockManagerStats stats_;
};

}  // namespace px
