#pragma once
// The attached side of Attach: a node that accepts no connections keeps one stream open to a
// reachable node (its relay) and is then reached at "<node id>@<relay address>". What comes down
// the stream — pipeline frames peers sent that way, and their control calls — goes to the
// node's PeerHandler exactly as if it had come in through its own peer service (peer_calls).
// The stream is reopened (with a backoff) whenever it breaks, until close().
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "swarm/peer_limits.h"

namespace px::swarm {

class PeerHandler;
class PeerTls;

struct RelayAttachmentOptions {
  std::shared_ptr<const PeerTls> tls;                 // private swarms: mutual TLS; null: plaintext
  int max_message_bytes = kDefaultMaxMessageBytes;
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
};

class RelayAttachment {
 public:
  // Starts attaching at once. `handler` must outlive the attachment.
  RelayAttachment(std::string relay_address, std::string node_id, PeerHandler& handler,
                  RelayAttachmentOptions options = {});
  ~RelayAttachment();  // close()
  RelayAttachment(const RelayAttachment&) = delete;
  RelayAttachment& operator=(const RelayAttachment&) = delete;

  const std::string& relay() const;
  // The stream is up: what peers send to "<node id>@<relay>" arrives.
  bool attached() const;
  // Ends the stream and joins the thread. Idempotent.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace px::swarm
