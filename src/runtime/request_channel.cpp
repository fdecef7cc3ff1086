#include "runtime/request_channel.h"

namespace px {

bool RequestChannel::next(StreamEvent& event, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (finished_) return false;
  if (!cv_.wait_for(lock, wait, [&] { return !events_.empty(); })) return false;
  event = std::move(events_.front());
  events_.pop_front();
  if (event.finish != FinishReason::None) finished_ = true;
  return true;
}

void RequestChannel::push(StreamEvent event) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::None: return "none";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Timeout: return "timeout";
    case FinishReason::Error: return "error";
  }
  return "unknown";
}

}  // namespace px
