#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace px {
namespace {

// Every chunk fn received, in any order.
std::vector<std::pair<int64_t, int64_t>> record_chunks(ThreadPool& pool, int64_t n, int64_t grain) {
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    std::lock_guard lock(mutex);
    chunks.emplace_back(begin, end);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        auto hits = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(n) + 1);
        pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
          ASSERT_LE(0, begin);
          ASSERT_LT(begin, end);
          ASSERT_LE(end, n);
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
              << "index " << i << " n=" << n << " grain=" << grain << " threads=" << threads;
      }
    }
  }
}

TEST(ThreadPool, ChunksAreDisjointContiguousAndAtLeastGrainLong) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 1000}) {
      for (int64_t grain : {1, 3, 64, 5000}) {
        const auto chunks = record_chunks(pool, n, grain);
        ASSERT_FALSE(chunks.empty());
        int64_t expected_begin = 0;
        for (size_t c = 0; c < chunks.size(); ++c) {
          EXPECT_EQ(chunks[c].first, expected_begin);
          const bool last = c + 1 == chunks.size();
          if (!last) {
            EXPECT_GE(chunks[c].second - chunks[c].first, grain) << "n=" << n;
          }
          expected_begin = chunks[c].second;
        }
        EXPECT_EQ(expected_begin, n);
      }
    }
  }
}

TEST(ThreadPool, WorkIsSharedAmongThreadsWhenThereIsEnough) {
  ThreadPool pool(4);
  // Many small chunks: more than one chunk proves the work was split for the helpers.
  EXPECT_GT(record_chunks(pool, 1000, 1).size(), 1u);
  // n <= grain runs as a single chunk on the caller.
  EXPECT_EQ(record_chunks(pool, 10, 10).size(), 1u);
}

TEST(ThreadPool, TenThousandQuickCallsDoNotDeadlock) {
  ThreadPool pool(4);
  int64_t total = 0;
  for (int call = 0; call < 10000; ++call) {
    std::atomic<int64_t> sum{0};
    pool.parallel_for(8, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i);
    });
    total += sum.load();
  }
  EXPECT_EQ(total, int64_t(10000) * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7));
}

TEST(ThreadPool, DestructionJoinsIdleAndUsedPools) {
  for (int round = 0; round < 50; ++round) {
    ThreadPool idle(3);  // destroyed without ever running a job
    ThreadPool used(3);
    std::atomic<int> calls{0};
    used.parallel_for(100, 1, [&](int64_t, int64_t) { calls.fetch_add(1); });
    EXPECT_GE(calls.load(), 1);
  }
}

TEST(ThreadPool, DefaultSizeUsesAtLeastOneThread) {
  ThreadPool pool;
  EXPECT_GE(pool.size(), 1);
  int64_t covered = 0;
  std::mutex mutex;
  pool.parallel_for(50, 1, [&](int64_t begin, int64_t end) {
    std::lock_guard lock(mutex);
    covered += end - begin;
  });
  EXPECT_EQ(covered, 50);
}

TEST(ThreadPool, ExceptionFromAnyChunkIsRethrownAndPoolStaysUsable) {
  ThreadPool pool(4);
  for (int64_t failing : {0, 500, 999}) {
    EXPECT_THROW(pool.parallel_for(1000, 1,
                                   [&](int64_t begin, int64_t end) {
                                     if (begin <= failing && failing < end)
                                       throw std::runtime_error("chunk failed");
                                   }),
                 std::runtime_error);
  }
  // After the failures the pool still covers every index.
  std::atomic<int64_t> covered{0};
  pool.parallel_for(1000, 1, [&](int64_t begin, int64_t end) { covered.fetch_add(end - begin); });
  EXPECT_EQ(covered.load(), 1000);
}

}  // namespace
}  // namespace px
