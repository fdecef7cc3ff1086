#pragma once
// Pipeline messages a node sends to itself: its request head feeding its own stage, and that
// stage returning tokens to the head. They are handed over in order on a thread of the inbox's
// own instead of through a gRPC stream to the node's own port (no encoding, no sockets, no
// f16 rounding of hidden states), with the same threading as messages from peers: the sender
// never runs the handler, so no lock of the sender's is held while it runs.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

class LocalInbox {
 public:
  using Handler = std::function<void(PipelineMessage)>;

  // Starts the delivery thread; `handler` runs on it, one message at a time, in post order.
  explicit LocalInbox(Handler handler, size_t max_queued = 1024);
  ~LocalInbox();  // stop()
  LocalInbox(const LocalInbox&) = delete;
  LocalInbox& operator=(const LocalInbox&) = delete;

  // Queues the message; false (leaving it untouched) when the queue is full or stopped.
  bool post(PipelineMessage&& message);

  // Delivers what is queued, then joins the thread; post() returns false afterwards.
  // Idempotent; must not be called from the handler.
  void stop();

 private:
  void deliver();

  Handler handler_;
  size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PipelineMessage> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace px::swarm
