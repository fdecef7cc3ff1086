#include "core/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/thread_pool.h"

namespace px {
namespace {

// 32-byte vectors through GCC's generic vector extension: wide loads on any target.
typedef uint64_t Vec __attribute__((vector_size(32)));
volatile uint64_t g_sink;

uint64_t sum_range(const Vec* data, size_t n) {
  Vec a = {0, 0, 0, 0}, b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += data[i];
    b += data[i + 1];
    c += data[i + 2];
    d += data[i + 3];
  }
  for (; i < n; ++i) a += data[i];
  const Vec s = a + b + c + d;
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  const size_t n = bytes / sizeof(Vec);
  std::unique_ptr<Vec[]> buffer(new Vec[n]);
  std::memset(buffer.get(), 1, n * sizeof(Vec));  // touch every page before timing
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    // One contiguous chunk per thread keeps the hardware prefetchers streaming.
    pool.parallel_for(pool.size(), 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const size_t lo = n * t / pool.size(), hi = n * (t + 1) / pool.size();
        sink.fetch_add(sum_range(buffer.get() + lo, hi - lo), std::memory_order_relaxed);
      }
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(n * sizeof(Vec)) / seconds);
  }
  g_sink = sink.load();  // keeps the sums observable, so the reads are not optimised away
  return best;
}

}  // namespace px
