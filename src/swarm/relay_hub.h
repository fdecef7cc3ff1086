#pragma once
// The relay side of Attach: the nodes attached to this one (each keeps an Attach stream open
// because it accepts no connections) and what waits to go down their streams — pipeline frames
// peers sent to "<node id>@<this node>" and control calls to be answered there. The gRPC service
// feeds it (frames and calls carrying px-relay-to) and drains it (one Attach call per attached
// node); the node itself feeds it too when it sends to a node attached to it (a reverse link).
//
// Frames from other nodes pass through at most `shared_bytes_per_second` in all unless the
// node was started with --relay (a reachable node relays for its neighbours by default, but
// does not give its bandwidth away unbounded); a full queue or the cap holds the sender's
// stream (back-pressure), never memory. Thread-safe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "swarm/peer_server.h"
#include "swarm/wire_codec.h"

namespace px::swarm {

class RelayHub {
 public:
  // One attached node's stream, as its Attach call sees it.
  class Session {
   public:
    const std::string& node_id() const { return node_id_; }
    // The next message for the stream: true with `out` set, false when nothing came within
    // `wait` or the session is closed (see closed()).
    bool next(v1::AttachDown& out, std::chrono::milliseconds wait);
    // The attached node's answer to a call.
    void answer(const v1::RelayedReply& reply);
    bool closed() const;

   private:
    friend class RelayHub;
    struct Pending {
      bool done = false;
      grpc::Status status;
      std::string reply;
    };
    Session(std::string node_id, std::string owner) : node_id_(std::move(node_id)), owner_(std::move(owner)) {}
    void close();

    const std::string node_id_;
    const std::string owner_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;   // to next(): a message or the close
    std::condition_variable space_;   // to senders: room in the queue, or the close
    std::condition_variable answered_;
    std::deque<v1::AttachDown> queue_;
    std::map<uint64_t, Pending> pending_;
    uint64_t next_call_ = 1;
    bool closed_ = false;
  };

  explicit RelayHub(RelayHubOptions options = {});
  ~RelayHub();  // stop()

  // A node attaches from `owner` (who the caller is: its credential's serial in a private swarm,
  // else its host): the new session replaces an older one of the same owner (a node
  // re-attaching after its stream broke on its side first). An id attached by another owner,
  // or bound to one within binding_memory of its stream's end, is refused: nobody takes over
  // another node's frames. Null with `refusal` set when refused, the hub full or stopped.
  std::shared_ptr<Session> attach(const std::string& node_id, const std::string& owner = "",
                                  std::string* refusal = nullptr);
  // The session's stream ended.
  void detach(const std::shared_ptr<Session>& session);

  // Queues a frame for attached node `node_id`, waiting up to `wait` for room (and for the
  // shared cap, when `shared`: the frame came from another node). False: not attached, or no
  // room in time.
  bool forward(const std::string& node_id, v1::PipelineFrame frame, bool shared, std::chrono::milliseconds wait);
  // A control call for an attached node, answered within `timeout`.
  grpc::Status call(const std::string& node_id, const std::string& method, const std::string& request,
                    std::chrono::milliseconds timeout, std::string& reply);

  bool attached(const std::string& node_id) const;
  // Frames from other nodes passed on so far (what this node relayed for others).
  uint64_t shared_frames() const { return shared_frames_; }
  std::vector<std::string> attached_nodes() const;
  // Closes every session and refuses new ones.
  void stop();

 private:
  std::shared_ptr<Session> find(const std::string& node_id) const;
  // Waits until the shared cap lets `bytes` more through (false: not within `wait`).
  bool take_share(size_t bytes, std::chrono::steady_clock::time_point deadline);

  const RelayHubOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  // Ids whose stream ended: who held them, and until when no other owner may attach under them.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> bindings_;
  bool stopped_ = false;
  std::atomic<uint64_t> shared_frames_{0};
  std::mutex share_mutex_;
  std::chrono::steady_clock::time_point share_free_at_{};  // when the cap has room again
};

}  // namespace px::swarm
