#pragma once
// How the swarm's pieces hand a message to a peer, by address. The node implements it over
// gRPC streams (one per neighbour, in order); tests implement it in process.
#include <string>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

class MessageSender {
 public:
  virtual ~MessageSender() = default;
  // Queues the message for the peer without blocking; false when it cannot be sent (the
  // peer's queue is full or its stream is broken).
  virtual bool send(const std::string& address, PipelineMessage message) = 0;
};

}  // namespace px::swarm
