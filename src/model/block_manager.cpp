#include "model/block_manager.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "model/prefix_hash.h"

namespace px {

BlockManager::BlockManager(BlockManagerConfig config) : config_(std::move(config)) {
  if (config_.n_blocks <= 0) fail("BlockManager: n_blocks is {}, expected > 0", config_.n_blocks);
  if (config_.block_size <= 0)
    fail("BlockManager: block_size is {}, expected > 0", config_.block_size);
  if (config_.watermark_blocks < 0)
    fail("BlockManager: watermark_blocks is {}, expected >= 0", config_.watermark_blocks);
  blocks_.resize(static_cast<size_t>(config_.n_blocks));
  block_tokens_.resize(static_cast<size_t>(config_.n_blocks) * config_.block_size);
  // A stack popping block 0 first: low ids get used first, which keeps tests readable.
  free_list_.reserve(blocks_.size());
  for (int32_t b = config_.n_blocks - 1; b >= 0; --b) free_list_.push_back(b);
}

// --- hashing and lookup ------------------------------------------------------------------------

uint64_t BlockManager::hash_block(uint64_t parent_hash, std::span<const int32_t> tokens) const {
  return config_.block_hash ? config_.block_hash(parent_hash, tokens)
                            : hash_token_block(parent_hash, tokens);
}

std::span<const int32_t> BlockManager::registered_tokens(int32_t block) const {
  const size_t bs = static_cast<size_t>(config_.block_size);
  return std::span<const int32_t>(block_tokens_).subspan(static_cast<size_t>(block) * bs, bs);
}

int32_t BlockManager::find_cached(uint64_t hash, std::span<const int32_t> tokens,
                                  int32_t parent) const {
  auto [it, end] = cache_index_.equal_range(hash);
  for (; it != end; ++it) {
    const int32_t b = it->second;
    const Block& block = blocks_[static_cast<size_t>(b)];
    // The hash is only an index: the tokens and the parent's identity decide. By induction from
    // the first block, a hit then has exactly the same whole prefix.
    if (block.parent != parent) continue;
    if (parent >= 0 && block.parent_generation != blocks_[static_cast<size_t>(parent)].generation)
      continue;
    const auto stored = registered_tokens(b);
    if (std::equal(stored.begin(), stored.end(), tokens.begin(), tokens.end())) return b;
  }
  return -1;
}

BlockManager::PrefixMatch BlockManager::match_prefix(std::span<const int32_t> tokens) const {
  PrefixMatch match;
  if (!config_.prefix_caching || tokens.empty()) return match;
  const size_t bs = static_cast<size_t>(config_.block_size);
  // At least the last token must be computed (its logits are needed), so only blocks lying
  // wholly inside tokens[0, n-1) can be hits.
  const size_t max_blocks = (tokens.size() - 1) / bs;
  uint64_t parent_hash = kPrefixHashRoot;
  int32_t parent = -1;
  for (size_t i = 0; i < max_blocks; ++i) {
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t hash = hash_block(parent_hash, block_tokens);
    const int32_t b = find_cached(hash, block_tokens, parent);
    if (b < 0) break;
    match.blocks.push_back(b);
    match.hashes.push_back(hash);
    if (blocks_[static_cast<size_t>(b)].ref == 0) ++match.unreferenced;
    parent_hash = hash;
    parent = b;
  }
  return match;
}

// --- block pool --------------------------------------------------------------------------------

void BlockManager::lru_push_back(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  block.lru_prev = lru_tail_;
  block.lru_next = -1;
  if (lru_tail_ >= 0) blocks_[static_cast<size_t>(lru_tail_)].lru_next = b;
  else lru_head_ = b;
  lru_tail_ = b;
  block.in_lru = true;
  ++n_cached_;
}

void BlockManager::lru_remove(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (block.lru_prev >= 0) blocks_[static_cast<size_t>(block.lru_prev)].lru_next = block.lru_next;
  else lru_head_ = block.lru_next;
  if (block.lru_next >= 0) blocks_[static_cast<size_t>(block.lru_next)].lru_prev = block.lru_prev;
  else lru_tail_ = block.lru_prev;
  block.lru_prev = block.lru_next = -1;
  block.in_lru = false;
  --n_cached_;
}

void BlockManager::evict(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  auto [it, end] = cache_index_.equal_range(block.hash);
  for (; it != end; ++it) {
    if (it->second == b) {
      cache_index_.erase(it);
      break;
    }
  }
  block.registered = false;
  block.parent = -1;
}

int32_t BlockManager::acquire_block() {
  int32_t b;
  if (!free_list_.empty()) {
    b = free_list_.back();
    free_list_.pop_back();
  } else if (lru_head_ >= 0) {
    b = lru_head_;
    lru_remove(b);
    evict(b);
    ++stats_.evictions;
  } else {
    fail("BlockManager: no free block left (all {} blocks in use)", config_.n_blocks);
  }
  Block& block = blocks_[static_cast<size_t>(b)];
  ++block.generation;  // the old content is gone: children linked to it must stop matching
  block.ref = 1;
  ++n_used_;
  return b;
}

void BlockManager::retain(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (block.ref == 0) {
    lru_remove(b);
    ++n_used_;
  }
  ++block.ref;
}

void BlockManager::release(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (--block.ref > 0) return;
  --n_used_;
  if (block.registered) lru_push_back(b);
  else free_list_.push_back(b);
}

void BlockManager::register_block(int32_t b, uint64_t hash, std::span<const int32_t> tokens,
                                  int32_t parent) {
  Block& block = blocks_[static_cast<size_t>(b)];
  block.registered = true;
  block.hash = hash;
  block.parent = parent;
  block.parent_generation = parent >= 0 ? blocks_[static_cast<size_t>(parent)].generation : 0;
  std::copy(tokens.begin(), tokens.end(),
            block_tokens_.begin() + static_cast<ptrdiff_t>(b) * config_.block_size);
  cache_index_.emplace(hash, b);
}

void BlockManager::register_computed_blocks(Sequence& seq) {
  if (!config_.prefix_caching) return;
  const size_t bs = static_cast<size_t>(config_.block_size);
  const size_t full_computed = static_cast<size_t>(seq.n_computed) / bs;
  const std::span<const int32_t> tokens(seq.tokens);
  for (size_t i = seq.hashes.size(); i < full_computed; ++i) {
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t parent_hash = i == 0 ? kPrefixHashRoot : seq.hashes[i - 1];
    const int32_t parent = i == 0 ? -1 : seq.table[i - 1];
    const uint64_t hash = hash_block(parent_hash, block_tokens);
    const int32_t own = seq.table[i];  // private: blocks past the registered prefix never shared
    const int32_t existing = find_cached(hash, block_tokens, parent);
    if (existing >= 0) {
      // Same content computed twice (e.g. two prompts admitted before either was cached, or the
      // last prompt block that allocate() may not share): keep one copy.
      retain(existing);
      seq.table[i] = existing;
      release(own);
      ++stats_.deduplicated_blocks;
    } else {
      register_block(own, hash, block_tokens, parent);
    }
    seq.hashes.push_back(hash);
  }
}

// --- sequences ---------------------------------------------------------------------------------

const BlockManager::Sequence& BlockManager::get(int64_t seq) const {
  const auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("BlockManager: unknown sequence {}", seq);
  return it->second;
}

BlockManager::Sequence& BlockManager::get(int64_t seq) {
  return const_cast<Sequence&>(std::as_const(*this).get(seq));
}

int BlockManager::blocks_needed(std::span<const int32_t> tokens) const {
  const PrefixMatch match = match_prefix(tokens);
  const int total = blocks_for_tokens(static_cast<int>(tokens.size()));
  return total - static_cast<int>(match.blocks.size()) + match.unreferenced;
}

bool BlockManager::can_allocate(std::span<const int32_t> tokens) const {
  return blocks_needed(tokens) <= free_blocks() - config_.watermark_blocks;
}

int BlockManager::cached_prefix_tokens(std::span<const int32_t> tokens) const {
  return static_cast<int>(match_prefix(tokens).blocks.size()) * config_.block_size;
}

int BlockManager::allocate(int64_t seq, std::span<const int32_t> tokens) {
  if (seqs_.contains(seq)) fail("BlockManager::allocate: sequence {} already exists", seq);
  if (tokens.empty()) fail("BlockManager::allocate: sequence {} has an empty prompt", seq);
  const PrefixMatch match = match_prefix(tokens);
  const int total = blocks_for_tokens(static_cast<int>(tokens.size()));
  const int needed = total - static_cast<int>(match.blocks.size()) + match.unreferenced;
  if (needed > free_blocks())
    fail("BlockManager::allocate: sequence {} needs {} blocks for {} tokens, only {} of {} free",
         seq, needed, tokens.size(), free_blocks(), config_.n_blocks);

  Sequence s;
  s.tokens.assign(tokens.begin(), tokens.end());
  s.table.reserve(static_cast<size_t>(total));
  // Take the hits before acquiring new blocks, so that eviction cannot pick them.
  for (const int32_t b : match.blocks) {
    retain(b);
    s.table.push_back(b);
  }
  while (static_cast<int>(s.table.size()) < total) s.table.push_back(acquire_block());
  s.hashes = match.hashes;
  const int cached = static_cast<int>(match.blocks.size()) * config_.block_size;
  s.n_computed = cached;
  seqs_.emplace(seq, std::move(s));

  stats_.prefix_query_tokens += static_cast<int64_t>(tokens.size());
  stats_.prefix_hit_tokens += cached;
  return cached;
}

bool BlockManager::can_append(int64_t seq, int n_tokens) const {
  const Sequence& s = get(seq);
  if (n_tokens < 0) fail("BlockManager::can_append: n_tokens is {}, expected >= 0", n_tokens);
  const int more = blocks_for_tokens(static_cast<int>(s.tokens.size()) + n_tokens) -
                   static_cast<int>(s.table.size());
  return more <= free_blocks();
}

bool BlockManager::append(int64_t seq, std::span<const int32_t> tokens) {
  Sequence& s = get(seq);
  const int more = blocks_for_tokens(static_cast<int>(s.tokens.size() + tokens.size())) -
                   static_cast<int>(s.table.size());
  if (more > free_blocks()) return false;
  // The last block is either partial (private: only full blocks are ever shared) or full, in
  // which case the new tokens start a new block: no shared block is ever written.
  for (int i = 0; i < more; ++i) s.table.push_back(acquire_block());
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  return true;
}

void BlockManager::mark_computed(int64_t seq, int n_tokens) {
  Sequence& s = get(seq);
  if (n_tokens < 0 || n_tokens > static_cast<int>(s.tokens.size()))
    fail("BlockManager::mark_computed: sequence {} has {} tokens, cannot mark {} computed", seq,
         s.tokens.size(), n_tokens);
  if (n_tokens <= s.n_computed) return;
  s.n_computed = n_tokens;
  register_computed_blocks(s);
}

void BlockManager::free(int64_t seq) {
  const auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("BlockManager::free: unknown sequence {}", seq);
  const std::vector<int32_t>& table = it->second.table;
  // Last block first: in the LRU list a prefix's tail is then evicted before its head, and the
  // head is what other prompts are most likely to share.
  for (auto b = table.rbegin(); b != table.rend(); ++b) release(*b);
  seqs_.erase(it);
}

// --- queries -----------------------------------------------------------------------------------

bool BlockManager::has_sequence(int64_t seq) const { return seqs_.contains(seq); }

const std::vector<int32_t>& BlockManager::block_table(int64_t seq) const { return get(seq).table; }

const std::vector<int32_t>& BlockManager::tokens(int64_t seq) const { return get(seq).tokens; }

int BlockManager::num_tokens(int64_t seq) const {
  return static_cast<int>(get(seq).tokens.size());
}

int BlockManager::num_computed(int64_t seq) const { return get(seq).n_computed; }

KvSlot BlockManager::slot(int64_t seq, int pos) const {
  const Sequence& s = get(seq);
  if (pos < 0 || pos >= static_cast<int>(s.tokens.size()))
    fail("BlockManager::slot: position {} outside sequence {} of {} tokens", pos, seq,
         s.tokens.size());
  return KvSlot{s.table[static_cast<size_t>(pos / config_.block_size)],
                pos % config_.block_size};
}

int BlockManager::free_blocks() const { return static_cast<int>(free_list_.size()) + n_cached_; }

double BlockManager::usage() const { return static_cast<double>(n_used_) / config_.n_blocks; }

BlockCounts BlockManager::counts() const {
  return BlockCounts{static_cast<int>(free_list_.size()), n_cached_, n_used_};
}

BlockState BlockManager::block_state(int32_t b) const {
  if (b < 0 || b >= config_.n_blocks)
    fail("BlockManager::block_state: block {} outside [0, {})", b, config_.n_blocks);
  const Block& block = blocks_[static_cast<size_t>(b)];
  if (block.ref > 0) return BlockState::Used;
  return block.registered ? BlockState::Cached : BlockState::Free;
}

int BlockManager::ref_count(int32_t b) const {
  if (b < 0 || b >= config_.n_blocks)
    fail("BlockManager::ref_count: block {} outside [0, {})", b, config_.n_blocks);
  return blocks_[static_cast<size_t>(b)].ref;
}

int BlockManager::blocks_for_tokens(int n_tokens) const {
  return (n_tokens + config_.block_size - 1) / config_.block_size;
}

// --- invariants --------------------------------------------------------------------------------

void BlockManager::check_invariants() const {
  const size_t n = blocks_.size();
  const size_t bs = static_cast<size_t>(config_.block_size);
  std::vector<int> refs(n, 0);
  for (const auto& [id, s] : seqs_) {
    if (s.table.size() != static_cast<size_t>(blocks_for_tokens(static_cast<int>(s.tokens.size()))))
      fail("invariant: sequence {} has {} tokens but {} blocks", id, s.tokens.size(), s.table.size());
    if (s.n_computed < 0 || s.n_computed > static_cast<int>(s.tokens.size()))
      fail("invariant: sequence {} has {} of {} tokens computed", id, s.n_computed, s.tokens.size());
    const size_t expected_hashes = config_.prefix_caching ? static_cast<size_t>(s.n_computed) / bs : 0;
    if (s.hashes.size() != expected_hashes)
      fail("invariant: sequence {} has {} registered blocks, expected {}", id, s.hashes.size(),
           expected_hashes);
    std::vector<int32_t> sorted = s.table;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      fail("invariant: sequence {} holds a block twice", id);
    for (size_t i = 0; i < s.table.size(); ++i) {
      const int32_t b = s.table[i];
      if (b < 0 || static_cast<size_t>(b) >= n) fail("invariant: sequence {} holds block {}", id, b);
      ++refs[static_cast<size_t>(b)];
      const Block& block = blocks_[static_cast<size_t>(b)];
      if (i >= s.hashes.size()) {
        if (block.registered || block.ref != 1)
          fail("invariant: block {} past sequence {}'s cached prefix is shared or registered", b, id);
        continue;
      }
      const int32_t parent = i == 0 ? -1 : s.table[i - 1];
      const auto stored = registered_tokens(b);
      const auto own = std::span<const int32_t>(s.tokens).subspan(i * bs, bs);
      if (!block.registered || block.hash != s.hashes[i] || block.parent != parent ||
          (parent >= 0 && block.parent_generation != blocks_[static_cast<size_t>(parent)].generation) ||
          !std::equal(stored.begin(), stored.end(), own.begin(), own.end()))
        fail("invariant: block {} at index {} of sequence {} does not hold its prefix", b, i, id);
    }
  }
  std::vector<int> places(n, 0);  // how many of {used, free list, LRU} each block is in
  int used = 0;
  for (size_t b = 0; b < n; ++b) {
    if (blocks_[b].ref != refs[b])
      fail("invariant: block {} has ref {} but {} tables hold it", b, blocks_[b].ref, refs[b]);
    if (blocks_[b].ref > 0) {
      ++used;
      ++places[b];
      if (blocks_[b].in_lru) fail("invariant: referenced block {} is in the LRU list", b);
    }
  }
  for (const int32_t b : free_list_) {
    const Block& block = blocks_[static_cast<size_t>(b)];
    if (block.ref != 0 || block.registered || block.in_lru)
      fail("invariant: free block {} has ref {}, registered {}", b, block.ref, block.registered);
    ++places[static_cast<size_t>(b)];
  }
  int cached = 0;
  for (int32_t b = lru_head_, prev = -1; b >= 0; prev = b, b = blocks_[static_cast<size_t>(b)].lru_next) {
    const Block& block = blocks_[static_cast<size_t>(b)];
    if (block.lru_prev != prev || block.ref != 0 || !block.registered || !block.in_lru)
      fail("invariant: LRU entry {} is inconsistent (ref {}, registered {})", b, block.ref,
           block.registered);
    ++places[static_cast<size_t>(b)];
    if (++cached > static_cast<int>(n)) fail("invariant: the LRU list has a cycle");
    if (block.lru_next < 0 && b != lru_tail_) fail("invariant: LRU tail is {}, list ends at {}", lru_tail_, b);
  }
  for (size_t b = 0; b < n; ++b)
    if (places[b] != 1) fail("invariant: block {} is in {} of used/free/cached", b, places[b]);
  if (used != n_used_ || cached != n_cached_)
    fail("invariant: counters say {} used / {} cached, blocks say {} / {}", n_used_, n_cached_, used,
         cached);
  size_t registered = 0;
  for (size_t b = 0; b < n; ++b) registered += blocks_[b].registered ? 1 : 0;
  if (cache_index_.size() != registered)
    fail("invariant: hash index has {} entries for {} registered blocks", cache_index_.size(),
         registered);
  std::vector<bool> indexed(n, false);
  for (const auto& [hash, b] : cache_index_) {
    const Block& block = blocks_[static_cast<size_t>(b)];
    if (!block.registered || block.hash != hash || indexed[static_cast<size_t>(b)])
      fail("invariant: hash index entry for block {} is stale or repeated", b);
    indexed[static_cast<size_t>(b)] = true;
  }
}

}  // namespace px
