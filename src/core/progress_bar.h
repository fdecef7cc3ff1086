#pragma once
// A one-line progress bar on stderr for long jobs (hashing a large model), drawn only when
// stderr is a terminal: logs, pipes and test output never see carriage returns.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace px {

class ProgressBar {
 public:
  // `total` units (bytes); nothing is drawn unless `enabled` and stderr is a terminal.
  ProgressBar(std::string label, uint64_t total, bool enabled = true);
  ~ProgressBar();  // clears the line
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool active() const { return active_; }
  // Thread-safe; redraws at most a few times a second and never makes a caller wait.
  void add(uint64_t n);

 private:
  void draw(uint64_t done);

  std::string label_;
  uint64_t total_;
  bool active_;
  std::atomic<uint64_t> done_{0};
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace px
