#pragma once
// A PeerHandler that records what reaches it (frames, heartbeats, aborts) and answers control
// calls with fixed, recognisable replies; release of request 666 throws. For the peer service
// and relay tests.
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "swarm/peer_server.h"
#include "unit/eventually.h"

namespace px::test {

using swarm::AssignReply;
using swarm::Assignment;
using swarm::JoinReplyData;
using swarm::NodeAnnouncement;
using swarm::PipelineMessage;
using swarm::ReleaseMessage;

class RecordingHandler : public swarm::PeerHandler {
 public:
  explicit RecordingHandler(std::string id = "00000000000000aa") : id_(std::move(id)) {}
  // What heartbeat replies say of the caller's addresses.
  std::vector<std::string> unreachable_reply;

  void on_pipeline(PipelineMessage message) override {
    if (const auto* release = std::get_if<ReleaseMessage>(&message); release && release->request == kExplodingRequest)
      throw Error("release of request 666 exploded");
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
  }
  NodeAnnouncement on_heartbeat(const NodeAnnouncement& from) override {
    std::lock_guard lock(mutex_);
    heartbeats_.push_back(from.node_id);
    NodeAnnouncement self;
    self.node_id = id_;
    self.address = "127.0.0.1:1";
    self.state = "ready";
    return self;
  }
  AssignReply on_assign(const Assignment& assignment) override {
    if (assignment.model_id == "unloadable") throw Error("cannot load model unloadable");
    return {true, "holding " + std::to_string(assignment.layer_begin) + ".." + std::to_string(assignment.layer_end)};
  }
  void on_abort(RequestId request) override {
    std::lock_guard lock(mutex_);
    aborted_.push_back(request);
  }
  JoinReplyData on_join(const NodeAnnouncement& node) override { return {true, "", "sched-of-" + node.node_id, std::nullopt, {}}; }
  std::string on_cluster() override { return R"({"nodes":["a","b"]})"; }
  std::vector<std::string> unreachable_at(const std::string&) override { return unreachable_reply; }

  size_t count() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  std::vector<PipelineMessage> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::vector<std::string> heartbeats() const {
    std::lock_guard lock(mutex_);
    return heartbeats_;
  }
  std::vector<RequestId> aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
  }
  bool wait_for(size_t n) const {
    return eventually([&] { return count() >= n; });
  }

  static constexpr RequestId kExplodingRequest = 666;

 private:
  const std::string id_;
  mutable std::mutex mutex_;
  std::vector<PipelineMessage> messages_;
  std::vector<std::string> heartbeats_;
  std::vector<RequestId> aborted_;
};

}  // namespace px::test
