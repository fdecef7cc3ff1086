#pragma once
// The thread-safe queue between the engine (producer of a request's events) and the frontend
// that reads them (RequestStream). Cancellation travels the other way as a flag.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "runtime/engine.h"

namespace px {

class RequestChannel : public RequestStream {
 public:
  bool next(StreamEvent& event, std::chrono::milliseconds wait) override;
  void cancel() override { cancelled_.store(true); }

  // Engine side.
  void push(StreamEvent event);
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
  bool finished_ = false;  // the final event has been read
  std::atomic<bool> cancelled_{false};
};

}  // namespace px
