#include "model/block_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "model/prefix_hash.h"

namespace px {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

BlockManagerConfig config(int n_blocks, int block_size = 16) {
  BlockManagerConfig c;
  c.n_blocks = n_blocks;
  c.block_size = block_size;
  return c;
}

// Stands in for the K/V tensors: one token id per slot. "Computing" a sequence writes its tokens
// at the slots the block manager gives; reading them back through the block table checks that
// every shared or reused block really holds that sequence's content.
class FakeKvPool {
 public:
  explicit FakeKvPool(const BlockManager& bm)
      : bm_(bm), slots_(static_cast<size_t>(bm.n_blocks()) * bm.block_size(), -1) {}

  // Writes positions [num_computed, upto) and marks them computed.
  void compute(BlockManager& bm, int64_t seq, int upto) {
    const auto& tokens = bm.tokens(seq);
    for (int p = bm.num_computed(seq); p < upto; ++p) {
      const KvSlot s = bm.slot(seq, p);
      // Writing into a block someone else also reads would corrupt their KV.
      ASSERT_EQ(bm.ref_count(s.block), 1) << "seq " << seq << " writes shared block " << s.block;
      at(s) = tokens[static_cast<size_t>(p)];
    }
    bm.mark_computed(seq, upto);
  }
  void compute_all(BlockManager& bm, int64_t seq) { compute(bm, seq, bm.num_tokens(seq)); }

  // Every computed position reads back the sequence's own token.
  void expect_holds(int64_t seq, int upto) const {
    const auto& tokens = bm_.tokens(seq);
    for (int p = 0; p < upto; ++p)
      ASSERT_EQ(at(bm_.slot(seq, p)), tokens[static_cast<size_t>(p)])
          << "seq " << seq << " position " << p;
  }
  void expect_holds(int64_t seq) const { expect_holds(seq, bm_.num_computed(seq)); }

 private:
  int32_t& at(KvSlot s) {
    return slots_[static_cast<size_t>(s.block) * bm_.block_size() + static_cast<size_t>(s.offset)];
  }
  int32_t at(KvSlot s) const {
    return slots_[static_cast<size_t>(s.block) * bm_.block_size() + static_cast<size_t>(s.offset)];
  }
  const BlockManager& bm_;
  std::vector<int32_t> slots_;
};

TEST(BlockManager, RejectsInvalidConfig) {
  EXPECT_THROW(BlockManager(config(0)), Error);
  EXPECT_THROW(BlockManager(config(4, 0)), Error);
  auto c = config(4);
  c.watermark_blocks = -1;
  EXPECT_THROW(BlockManager{c}, Error);
}

TEST(BlockManager, AllocationCoversCeilTokensOverBlockSize) {
  for (int n : {1, 15, 16, 17, 33, 40, 64}) {
    BlockManager bm(config(8));
    const int expected_blocks = (n + 15) / 16;
    EXPECT_EQ(bm.blocks_needed(iota_tokens(n, 0)), expected_blocks) << n;
    EXPECT_EQ(bm.allocate(1, iota_tokens(n, 0)), 0);
    const auto& table = bm.block_table(1);
    ASSERT_EQ(static_cast<int>(table.size()), expected_blocks) << n;
    EXPECT_EQ(std::set<int32_t>(table.begin(), table.end()).size(), table.size());
    for (int32_t b : table) EXPECT_EQ(bm.block_state(b), BlockState::Used);
    EXPECT_EQ(bm.num_tokens(1), n);
    EXPECT_EQ(bm.free_blocks(), 8 - expected_blocks);
    EXPECT_DOUBLE_EQ(bm.usage(), expected_blocks / 8.0);
    bm.check_invariants();
  }
}

TEST(BlockManager, RejectsDuplicateSequenceAndEmptyPrompt) {
  BlockManager bm(config(8));
  bm.allocate(1, iota_tokens(3, 0));
  EXPECT_THROW(bm.allocate(1, iota_tokens(3, 0)), Error);
  EXPECT_THROW(bm.allocate(2, std::vector<int32_t>{}), Error);
  EXPECT_THROW(bm.free(7), Error);
  EXPECT_THROW(bm.block_table(7), Error);
  EXPECT_EQ(bm.counts().used, 1);
  bm.check_invariants();
}

TEST(BlockManager, AppendGrowsTableOnlyAtBlockBoundaries) {
  BlockManager bm(config(8));
  bm.allocate(1, iota_tokens(15, 0));
  ASSERT_EQ(bm.block_table(1).size(), 1u);
  const std::vector<int32_t> one = {99};
  ASSERT_TRUE(bm.append(1, one));  // 16 tokens: still one block
  EXPECT_EQ(bm.block_table(1).size(), 1u);
  ASSERT_TRUE(bm.append(1, one));  // 17: a second block
  EXPECT_EQ(bm.block_table(1).size(), 2u);
  ASSERT_TRUE(bm.append(1, iota_tokens(15, 200)));  // 32
  EXPECT_EQ(bm.block_table(1).size(), 2u);
  ASSERT_TRUE(bm.append(1, iota_tokens(17, 300)));  // 49: two more at once
  EXPECT_EQ(bm.block_table(1).size(), 4u);
  EXPECT_EQ(bm.num_tokens(1), 49);
  EXPECT_EQ(bm.tokens(1)[15], 99);
  EXPECT_EQ(bm.tokens(1)[48], 316);
  EXPECT_EQ(bm.free_blocks(), 4);
  bm.check_invariants();
}

TEST(BlockManager, SlotIsBlockTableEntryAndOffset) {
  BlockManager bm(config(8, 4));
  bm.allocate(1, iota_tokens(3, 0));
  bm.allocate(2, iota_tokens(3, 0));
  ASSERT_TRUE(bm.append(1, iota_tokens(3, 3)));
  ASSERT_TRUE(bm.append(2, iota_tokens(7, 3)));  // interleaved: sequence 2's blocks are scattered
  const auto& table = bm.block_table(2);
  for (int p = 0; p < 10; ++p) {
    const KvSlot s = bm.slot(2, p);
    EXPECT_EQ(s.block, table[static_cast<size_t>(p / 4)]);
    EXPECT_EQ(s.offset, p % 4);
  }
  EXPECT_THROW(bm.slot(2, 10), Error);
  EXPECT_THROW(bm.slot(2, -1), Error);
}

TEST(BlockManager, FreeReturnsEveryBlock) {
  for (bool caching : {false, true}) {
    auto c = config(8);
    c.prefix_caching = caching;
    BlockManager bm(c);
    FakeKvPool pool(bm);
    bm.allocate(1, iota_tokens(40, 0));
    bm.allocate(2, iota_tokens(20, 100));
    pool.compute_all(bm, 1);
    EXPECT_EQ(bm.free_blocks(), 3);
    bm.free(1);
    EXPECT_FALSE(bm.has_sequence(1));
    EXPECT_EQ(bm.free_blocks(), 6);
    bm.free(2);
    EXPECT_EQ(bm.free_blocks(), 8);
    EXPECT_EQ(bm.usage(), 0.0);
    // With caching, sequence 1's two full computed blocks stay cached; its partial one is free.
    EXPECT_EQ(bm.counts().cached, caching ? 2 : 0);
    bm.check_invariants();
  }
}

TEST(BlockManager, SamePromptSharesFullComputedBlocks) {
  BlockManager bm(config(8));
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(40, 1000);
  EXPECT_EQ(bm.allocate(1, prompt), 0);
  pool.compute_all(bm, 1);
  // Blocks 0 and 1 are hits (already referenced, so they cost nothing); block 2 is new.
  EXPECT_EQ(bm.blocks_needed(prompt), 1);
  EXPECT_EQ(bm.cached_prefix_tokens(prompt), 32);
  EXPECT_EQ(bm.allocate(2, prompt), 32);
  const auto& a = bm.block_table(1);
  const auto& b = bm.block_table(2);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);  // the partial block is private
  EXPECT_EQ(bm.ref_count(a[0]), 2);
  EXPECT_EQ(bm.ref_count(a[1]), 2);
  EXPECT_EQ(bm.ref_count(b[2]), 1);
  EXPECT_EQ(bm.num_computed(2), 32);
  EXPECT_EQ(bm.counts().used, 4);
  pool.expect_holds(2);
  pool.compute_all(bm, 2);
  pool.expect_holds(2);
  EXPECT_EQ(bm.stats().prefix_query_tokens, 80);
  EXPECT_EQ(bm.stats().prefix_hit_tokens, 32);
  EXPECT_DOUBLE_EQ(bm.stats().prefix_hit_rate(), 32.0 / 80.0);
  bm.check_invariants();
}

TEST(BlockManager, PromptOfWholeBlocksLeavesItsLastBlockToCompute) {
  BlockManager bm(config(8));
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(32, 7);
  bm.allocate(1, prompt);
  pool.compute_all(bm, 1);
  // Both blocks are cached, but the last token must be computed to get logits: only the first
  // block can be reused.
  EXPECT_EQ(bm.allocate(2, prompt), 16);
  EXPECT_EQ(bm.block_table(2)[0], bm.block_table(1)[0]);
  EXPECT_NE(bm.block_table(2)[1], bm.block_table(1)[1]);
  // Once computed, the recomputed copy is replaced by the cached block and freed.
  const int free_before = bm.free_blocks();
  pool.compute_all(bm, 2);
  EXPECT_EQ(bm.block_table(2)[1], bm.block_table(1)[1]);
  EXPECT_EQ(bm.ref_count(bm.block_table(1)[1]), 2);
  EXPECT_EQ(bm.free_blocks(), free_before + 1);
  EXPECT_EQ(bm.stats().deduplicated_blocks, 1);
  pool.expect_holds(2);
  // A one-token prompt can never hit.
  EXPECT_EQ(bm.allocate(3, iota_tokens(1, 7)), 0);
  bm.check_invariants();
}

TEST(BlockManager, BlocksAreNotSharedBeforeTheyAreComputed) {
  BlockManager bm(config(12));
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(40, 0);
  bm.allocate(1, prompt);
  EXPECT_EQ(bm.cached_prefix_tokens(prompt), 0);
  EXPECT_EQ(bm.allocate(2, prompt), 0);
  for (int32_t b : bm.block_table(2)) EXPECT_EQ(bm.ref_count(b), 1);
  // Chunked prefill: after 20 tokens only the first block's KV exists.
  pool.compute(bm, 1, 20);
  EXPECT_EQ(bm.allocate(3, prompt), 16);
  EXPECT_EQ(bm.block_table(3)[0], bm.block_table(1)[0]);
  EXPECT_NE(bm.block_table(3)[1], bm.block_table(1)[1]);
  pool.expect_holds(3);
  bm.check_invariants();
}

TEST(BlockManager, IdenticalBlocksComputedTwiceAreMerged) {
  BlockManager bm(config(8, 4));
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(9, 50);
  bm.allocate(1, prompt);
  bm.allocate(2, prompt);  // admitted in the same step: no hit yet
  EXPECT_EQ(bm.free_blocks(), 2);
  pool.compute_all(bm, 1);
  pool.compute_all(bm, 2);
  EXPECT_EQ(bm.block_table(1)[0], bm.block_table(2)[0]);
  EXPECT_EQ(bm.block_table(1)[1], bm.block_table(2)[1]);
  EXPECT_NE(bm.block_table(1)[2], bm.block_table(2)[2]);
  EXPECT_EQ(bm.free_blocks(), 4);
  EXPECT_EQ(bm.stats().deduplicated_blocks, 2);
  pool.expect_holds(1);
  pool.expect_holds(2);
  bm.check_invariants();
}

TEST(BlockManager, GeneratedTokensBecomeCacheable) {
  BlockManager bm(config(8, 4));
  FakeKvPool pool(bm);
  bm.allocate(1, iota_tokens(3, 0));
  pool.compute_all(bm, 1);
  ASSERT_TRUE(bm.append(1, iota_tokens(6, 3)));  // 9 tokens: a conversation's next turn
  pool.compute_all(bm, 1);
  bm.free(1);
  EXPECT_EQ(bm.allocate(2, iota_tokens(12, 0)), 8);
  pool.expect_holds(2);
  bm.check_invariants();
}

// Three cached prompts with 2 full blocks each; block size 4.
class BlockManagerEviction : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      const int64_t id = i + 1;
      prompts.push_back(iota_tokens(9, 100 * (i + 1)));
      bm.allocate(id, prompts.back());
      pool.compute_all(bm, id);
      bm.free(id);  // leaves 2 cached blocks, 1 free block
    }
    ASSERT_EQ(bm.counts().cached, 4);
    ASSERT_EQ(bm.counts().free, 2);
  }
  int cached(int i) const { return bm.cached_prefix_tokens(prompts[static_cast<size_t>(i)]); }

  BlockManager bm{config(6, 4)};
  FakeKvPool pool{bm};
  std::vector<std::vector<int32_t>> prompts;
};

TEST_F(BlockManagerEviction, EvictsLeastRecentlyReleasedAndTailsBeforeHeads) {
  bm.allocate(10, iota_tokens(12, 900));  // 3 new blocks: 2 free ones, then 1 eviction
  EXPECT_EQ(bm.stats().evictions, 1);
  EXPECT_EQ(cached(0), 4);  // prompt 0 lost its second block first
  EXPECT_EQ(cached(1), 8);
  ASSERT_TRUE(bm.append(10, std::vector<int32_t>{1}));
  EXPECT_EQ(cached(0), 0);
  EXPECT_EQ(cached(1), 8);
  ASSERT_TRUE(bm.append(10, iota_tokens(4, 0)));
  EXPECT_EQ(cached(1), 4);
  EXPECT_EQ(bm.stats().evictions, 3);
  bm.check_invariants();
}

TEST_F(BlockManagerEviction, ReusedPrefixMovesToTheBackOfTheQueue) {
  EXPECT_EQ(bm.allocate(3, prompts[0]), 8);  // takes prompt 0's blocks out of the LRU list
  EXPECT_EQ(bm.counts().cached, 2);
  bm.free(3);
  bm.allocate(10, iota_tokens(16, 900));  // 2 free + 2 evictions: prompt 1's this time
  EXPECT_EQ(cached(0), 8);
  EXPECT_EQ(cached(1), 0);
  bm.check_invariants();
}

TEST_F(BlockManagerEviction, EvictedBlockIsNeverAStaleHit) {
  // Reuse every block for other content, then ask for the old prompts again.
  bm.allocate(10, iota_tokens(24, 5000));
  pool.compute_all(bm, 10);
  bm.free(10);
  EXPECT_EQ(bm.stats().evictions, 4);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cached(i), 0);
    const int64_t id = 20 + i;
    EXPECT_EQ(bm.allocate(id, prompts[static_cast<size_t>(i)]), 0);
    pool.compute_all(bm, id);
    pool.expect_holds(id);  // the token comparison a stale hit would fail
    bm.free(id);
  }
  // Prompt 1 evicted what was left of the big sequence, not prompt 0's fresh blocks.
  EXPECT_EQ(cached(0), 8);
  EXPECT_EQ(cached(1), 8);
  bm.check_invariants();
}

TEST(BlockManager, CanAllocateIsFalseWhenFullAndTrueAfterFree) {
  BlockManager bm(config(4, 4));
  bm.allocate(1, iota_tokens(16, 0));
  const auto prompt = iota_tokens(1, 77);
  EXPECT_EQ(bm.free_blocks(), 0);
  EXPECT_FALSE(bm.can_allocate(prompt));
  EXPECT_THROW(bm.allocate(2, prompt), Error);
  EXPECT_FALSE(bm.has_sequence(2));
  EXPECT_EQ(bm.counts().used, 4);
  bm.free(1);
  EXPECT_TRUE(bm.can_allocate(prompt));
  EXPECT_EQ(bm.allocate(2, prompt), 0);
  bm.check_invariants();
}

TEST(BlockManager, WatermarkKeepsBlocksForRunningSequences) {
  auto c = config(4, 4);
  c.watermark_blocks = 1;
  BlockManager bm(c);
  EXPECT_TRUE(bm.can_allocate(iota_tokens(12, 0)));
  EXPECT_FALSE(bm.can_allocate(iota_tokens(13, 0)));
  bm.allocate(1, iota_tokens(13, 0));  // allocate itself ignores the watermark
  EXPECT_EQ(bm.free_blocks(), 0);
}

TEST(BlockManager, CachedHitsThatAreUnreferencedCountAgainstFreeBlocks) {
  BlockManager bm(config(3, 4));
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(9, 0);
  bm.allocate(1, prompt);
  pool.compute_all(bm, 1);
  bm.free(1);
  // 2 cached hits (leaving the evictable pool) + 1 new block.
  EXPECT_EQ(bm.blocks_needed(prompt), 3);
  EXPECT_TRUE(bm.can_allocate(prompt));
  EXPECT_FALSE(bm.can_allocate(iota_tokens(13, 0)));
  EXPECT_EQ(bm.allocate(2, prompt), 8);
  EXPECT_EQ(bm.free_blocks(), 0);
  EXPECT_EQ(bm.stats().evictions, 0);
  pool.expect_holds(2);
  bm.check_invariants();
}

TEST(BlockManager, FailedAppendChangesNothing) {
  BlockManager bm(config(3, 4));
  bm.allocate(1, iota_tokens(4, 0));
  bm.allocate(2, iota_tokens(6, 10));
  const auto table = bm.block_table(1);
  const auto tokens = bm.tokens(1);
  EXPECT_FALSE(bm.can_append(1, 1));
  EXPECT_FALSE(bm.append(1, std::vector<int32_t>{5}));
  EXPECT_EQ(bm.block_table(1), table);
  EXPECT_EQ(bm.tokens(1), tokens);
  EXPECT_EQ(bm.counts().used, 3);
  bm.check_invariants();
  // Sequence 2 still has room in its partial block.
  EXPECT_TRUE(bm.can_append(2, 2));
  EXPECT_FALSE(bm.can_append(2, 3));
  EXPECT_TRUE(bm.append(2, iota_tokens(2, 16)));
  EXPECT_FALSE(bm.append(2, std::vector<int32_t>{18}));
  EXPECT_EQ(bm.num_tokens(2), 8);
  bm.free(2);
  EXPECT_TRUE(bm.append(1, std::vector<int32_t>{5}));
  bm.check_invariants();
}

TEST(BlockManager, HashCollisionsNeverShareDifferentContent) {
  auto c = config(16, 4);
  c.block_hash = [](uint64_t, std::span<const int32_t>) { return uint64_t{42}; };
  BlockManager bm(c);
  FakeKvPool pool(bm);
  const auto head_a = iota_tokens(4, 0);
  const auto head_b = iota_tokens(4, 100);
  const auto tail = iota_tokens(5, 500);
  bm.allocate(1, concat(head_a, tail));
  pool.compute_all(bm, 1);
  // Same hash, other tokens: no hit.
  EXPECT_EQ(bm.allocate(2, concat(head_b, iota_tokens(5, 600))), 0);
  // Same second block after another first block: the parent differs, no hit either.
  EXPECT_EQ(bm.allocate(3, concat(head_b, tail)), 0);
  pool.compute_all(bm, 2);
  pool.compute_all(bm, 3);
  // The true prefixes are found among all the colliding entries.
  EXPECT_EQ(bm.allocate(4, concat(head_a, tail)), 8);
  EXPECT_EQ(bm.allocate(5, concat(head_b, tail)), 8);
  EXPECT_EQ(bm.block_table(5)[1], bm.block_table(3)[1]);
  EXPECT_EQ(bm.allocate(6, concat(head_b, iota_tokens(5, 600))), 8);
  for (int64_t id = 4; id <= 6; ++id) pool.expect_holds(id);
  bm.check_invariants();
}

TEST(BlockManager, WithoutPrefixCachingNothingIsShared) {
  auto c = config(8);
  c.prefix_caching = false;
  BlockManager bm(c);
  FakeKvPool pool(bm);
  const auto prompt = iota_tokens(40, 0);
  bm.allocate(1, prompt);
  pool.compute_all(bm, 1);
  EXPECT_EQ(bm.allocate(2, prompt), 0);
  EXPECT_EQ(bm.counts().used, 6);
  bm.check_invariants();
}

TEST(PrefixHash, ChainsOverFullBlocksOnly) {
  const auto tokens = iota_tokens(40, 0);
  const auto hashes = prefix_block_hashes(tokens, 16);
  ASSERT_EQ(hashes.size(), 2u);
  const std::span<const int32_t> all(tokens);
  EXPECT_EQ(hashes[0], hash_token_block(kPrefixHashRoot, all.subspan(0, 16)));
  EXPECT_EQ(hashes[1], hash_token_block(hashes[0], all.subspan(16, 16)));
  // Depends on the parent, on every token and on the length.
  EXPECT_NE(hash_token_block(1, all.subspan(0, 16)), hash_token_block(2, all.subspan(0, 16)));
  auto changed = tokens;
  changed[15] ^= 1;
  EXPECT_NE(prefix_block_hashes(changed, 16)[0], hashes[0]);
  const std::vector<int32_t> zeros3 = {0, 0, 0}, zeros4 = {0, 0, 0, 0};
  EXPECT_NE(hash_token_block(0, zeros3), hash_token_block(0, zeros4));
  EXPECT_THROW(prefix_block_hashes(tokens, 0), Error);
}

TEST(PrefixHash, NoCollisionsAmongManySimilarBlocks) {
  std::set<uint64_t> seen;
  std::vector<int32_t> block(16, 0);
  for (int32_t i = 0; i < 20000; ++i) {
    block[static_cast<size_t>(i % 16)] = i;  // blocks differing in one or two tokens
    seen.insert(hash_token_block(kPrefixHashRoot, block));
  }
  EXPECT_EQ(seen.size(), 20000u);
}

// --- randomized stress ---------------------------------------------------------------------------

// Checks, from the public API alone, what must hold after every operation.
void expect_consistent(const BlockManager& bm, const std::set<int64_t>& live,
                       const FakeKvPool& pool) {
  std::map<int32_t, int> holders;
  for (int64_t id : live) {
    const auto& table = bm.block_table(id);
    ASSERT_EQ(static_cast<int>(table.size()), bm.blocks_for_tokens(bm.num_tokens(id))) << id;
    for (int32_t b : table) ++holders[b];
    pool.expect_holds(id);
  }
  int free = 0, cached = 0, used = 0;
  for (int32_t b = 0; b < bm.n_blocks(); ++b) {
    const auto it = holders.find(b);
    const int expected_ref = it == holders.end() ? 0 : it->second;
    ASSERT_EQ(bm.ref_count(b), expected_ref) << "block " << b;
    const BlockState state = bm.block_state(b);
    ASSERT_EQ(state == BlockState::Used, expected_ref > 0) << "block " << b;
    free += state == BlockState::Free;
    cached += state == BlockState::Cached;
    used += state == BlockState::Used;
  }
  const BlockCounts counts = bm.counts();
  ASSERT_EQ(counts.free, free);
  ASSERT_EQ(counts.cached, cached);
  ASSERT_EQ(counts.used, used);
  ASSERT_EQ(free + cached + used, bm.n_blocks());
  ASSERT_EQ(bm.free_blocks(), free + cached);
  ASSERT_DOUBLE_EQ(bm.usage(), static_cast<double>(used) / bm.n_blocks());
  bm.check_invariants();
}

void run_stress(BlockManagerConfig c, uint32_t seed) {
  BlockManager bm(c);
  FakeKvPool pool(bm);
  std::mt19937 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // A few shared "system prompts" and a 4-token vocabulary, so prefixes and whole blocks repeat.
  std::vector<std::vector<int32_t>> families;
  for (int f = 0; f < 4; ++f) {
    families.emplace_back();
    for (int i = 0; i < 24; ++i) families.back().push_back(uniform(0, 3));
  }
  std::set<int64_t> live;
  int64_t next_id = 0;
  int64_t hit_tokens = 0;
  int allocations = 0, failed_appends = 0;
  auto random_live = [&] {
    auto it = live.begin();
    std::advance(it, uniform(0, static_cast<int>(live.size()) - 1));
    return *it;
  };
  for (int op = 0; op < 10000; ++op) {
    const int kind = live.empty() ? 0 : uniform(0, 99);
    if (kind < 30) {
      const auto& family = families[static_cast<size_t>(uniform(0, 3))];
      std::vector<int32_t> prompt(family.begin(), family.begin() + uniform(0, 24));
      for (int i = uniform(1, 12); i > 0; --i) prompt.push_back(uniform(0, 3));
      const int expected_cached = bm.cached_prefix_tokens(prompt);
      const int free_before = bm.free_blocks();
      const int needed = bm.blocks_needed(prompt);
      if (needed <= free_before) {
        const int64_t id = next_id++;
        const int got = bm.allocate(id, prompt);
        ASSERT_EQ(got, expected_cached);
        ASSERT_EQ(got % c.block_size, 0);
        ASSERT_LE(got, static_cast<int>(prompt.size()) - 1);
        ASSERT_EQ(bm.free_blocks(), free_before - needed);
        live.insert(id);
        hit_tokens += got;
        ++allocations;
      } else {
        ASSERT_FALSE(bm.can_allocate(prompt));
        ASSERT_THROW(bm.allocate(next_id, prompt), Error);
        ASSERT_FALSE(bm.has_sequence(next_id));
        ASSERT_EQ(bm.free_blocks(), free_before);
      }
    } else if (kind < 60) {
      const int64_t id = random_live();
      pool.compute(bm, id, uniform(bm.num_computed(id), bm.num_tokens(id)));
    } else if (kind < 85) {
      const int64_t id = random_live();
      std::vector<int32_t> more;
      for (int i = uniform(1, 6); i > 0; --i) more.push_back(uniform(0, 3));
      const bool expected = bm.can_append(id, static_cast<int>(more.size()));
      const auto table = bm.block_table(id);
      const int n = bm.num_tokens(id);
      const BlockCounts counts = bm.counts();
      ASSERT_EQ(bm.append(id, more), expected);
      if (!expected) {
        ++failed_appends;
        ASSERT_EQ(bm.block_table(id), table);
        ASSERT_EQ(bm.num_tokens(id), n);
        ASSERT_EQ(bm.counts().used, counts.used);
        ASSERT_EQ(bm.counts().cached, counts.cached);
      }
    } else {
      const int64_t id = random_live();
      bm.free(id);
      live.erase(id);
    }
    expect_consistent(bm, live, pool);
    if (::testing::Test::HasFatalFailure()) FAIL() << "after operation " << op;
  }
  EXPECT_EQ(bm.stats().prefix_hit_tokens, hit_tokens);
  // The run must actually have reached the interesting states.
  EXPECT_GT(allocations, 500);
  EXPECT_GT(failed_appends, 0);
  if (c.prefix_caching) {
    EXPECT_GT(hit_tokens, 0);
    EXPECT_GT(bm.stats().evictions, 0);
    EXPECT_GT(bm.stats().deduplicated_blocks, 0);
  }
}

TEST(BlockManagerStress, RandomOperationsKeepInvariants) {
  run_stress(config(48, 4), 1234);
}

TEST(BlockManagerStress, RandomOperationsKeepInvariantsUnderHashCollisions) {
  auto c = config(48, 4);
  // 4 hash values in all: nearly every lookup meets a colliding block.
  c.block_hash = [](uint64_t parent, std::span<const int32_t> tokens) {
    return (parent + static_cast<uint64_t>(tokens[0])) % 4;
  };
  run_stress(c, 99);
}

TEST(BlockManagerStress, RandomOperationsKeepInvariantsWithoutCaching) {
  auto c = config(48, 4);
  c.prefix_caching = false;
  run_stress(c, 7);
}

}  // namespace
}  // namespace px
