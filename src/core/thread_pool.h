#pragma once
// A persistent pool of worker threads for data-parallel loops in the forward pass.
// parallel_for splits [0, n) into chunks; the calling thread works too, so a pool of
// n_threads uses n_threads - 1 helpers. No allocation happens per call.
// Decode issues a hundred small parallel_for calls per token, so hand-offs spin briefly on
// atomics before falling back to sleeping on a condition variable: a wake-up through the
// kernel costs tens of microseconds, a spinning hand-off well under one.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace px {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n), each at least `grain` long
  // (except the last), and returns when all are done. If fn throws, the remaining chunks are
  // skipped, every thread leaves fn, and the first exception is rethrown here.
  // One caller at a time (a second concurrent caller gets px::Error), and fn must not call
  // parallel_for on the same pool.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_workers_{0};
  int sleeping_workers_ = 0;  // guarded by mutex_
  int spin_iterations_ = 0;   // 0 when threads outnumber cores: spinning would steal their time

  // The job of the current generation.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 1;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<bool> in_use_{false};
  std::exception_ptr job_error_;  // the first exception fn threw (guarded by mutex_)
};

}  // namespace px
