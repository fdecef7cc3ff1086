#include "core/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace px {

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      active_(enabled && total > 0 && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (active_) std::fputs("\r\033[K", stderr);
}

void ProgressBar::add(uint64_t n) {
  const uint64_t done = done_.fetch_add(n, std::memory_order_relaxed) + n;
  if (!active_) return;
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock) return;  // another thread is drawing: skip rather than wait
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200) && done < total_) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::draw(uint64_t done) {
  constexpr int kWidth = 30;
  const double fraction = std::min(1.0, double(done) / double(total_));
  const int filled = int(fraction * kWidth);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? double(done) / seconds / 1e9 : 0;
  fmt::print(stderr, "\r{} [{}{}] {:5.1f} % {:.2f} GB/s", label_, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), 100 * fraction, rate);
  std::fflush(stderr);
}

}  // namespace px
