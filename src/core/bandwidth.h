#pragma once
// Measures the machine's memory read bandwidth, the ceiling of CPU decode speed: every decoded
// token reads every weight once.
#include <cstddef>

namespace px {

class ThreadPool;

// Best-of-`repeats` read bandwidth in bytes per second, reading a buffer of `bytes` (far larger
// than the caches) with every thread of the pool.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(512) << 20, int repeats = 5);

}  // namespace px
