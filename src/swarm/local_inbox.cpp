#include "swarm/local_inbox.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace px::swarm {

LocalInbox::LocalInbox(Handler handler, size_t max_queued)
    : handler_(std::move(handler)), max_queued_(max_queued), thread_([this] { deliver(); }) {}

LocalInbox::~LocalInbox() { stop(); }

bool LocalInbox::post(PipelineMessage&& message) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(message));
  }
  wake_.notify_one();
  return true;
}

void LocalInbox::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void LocalInbox::deliver() {
  for (;;) {
    PipelineMessage message;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything delivered
      message = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      handler_(std::move(message));
    } catch (const std::exception& e) {
      // As from a peer: a message the node cannot take is logged, not fatal.
      spdlog::error("a message this node sent itself failed: {}", e.what());
    }
  }
}

}  // namespace px::swarm
