#pragma once
// Polls a condition with a bound, for tests that wait on other threads or processes: a broken
// build fails, it never hangs.
#include <chrono>
#include <functional>
#include <thread>

namespace px::test {

// Generous: only a failing test ever waits this long (the machine may be loaded).
inline constexpr std::chrono::seconds kPatience{30};

// Polls `condition` every few milliseconds until it holds (true) or `limit` passes (false).
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = kPatience) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

}  // namespace px::test
