#include "swarm/relay_hub.h"

#include <algorithm>
#include <thread>

namespace px::swarm {

using Clock = std::chrono::steady_clock;

bool RelayHub::Session::next(v1::AttachDown& out, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, wait, [&] { return closed_ || !queue_.empty(); })) return false;
  if (closed_) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  space_.notify_one();
  return true;
}

void RelayHub::Session::answer(const v1::RelayedReply& reply) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(reply.call());
  if (it == pending_.end()) return;  // timed out meanwhile, or a call the node made up
  it->second.done = true;
  it->second.status = reply.code() == 0 ? grpc::Status::OK
                                        : grpc::Status(grpc::StatusCode(std::clamp(reply.code(), 1, 16)),
                                                       wire::wire_text(reply.message()));
  it->second.reply = reply.reply();
  answered_.notify_all();
}

bool RelayHub::Session::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void RelayHub::Session::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  queue_.clear();
  ready_.notify_all();
  space_.notify_all();
  answered_.notify_all();
}

RelayHub::RelayHub(RelayHubOptions options) : options_(options) {}

RelayHub::~RelayHub() { stop(); }

std::shared_ptr<RelayHub::Session> RelayHub::attach(const std::string& node_id, const std::string& owner,
                                                    std::string* refusal) {
  auto refuse = [&](std::string why) {
    if (refusal) *refusal = std::move(why);
    return nullptr;
  };
  std::shared_ptr<Session> old;
  std::shared_ptr<Session> fresh(new Session(node_id, owner));
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return refuse("this node is shutting down");
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(bindings_, [&](const auto& b) { return now >= b.second.second; });
    auto it = sessions_.find(node_id);
    if (it != sessions_.end() && it->second->owner_ != owner) {
      return refuse("node id " + node_id + " is attached here by another peer");
    }
    if (auto bound = bindings_.find(node_id); bound != bindings_.end() && bound->second.first != owner) {
      return refuse("node id " + node_id + " was attached here by another peer moments ago");
    }
    if (it == sessions_.end() && sessions_.size() >= options_.max_attached) {
      return refuse("this node relays for as many nodes as it takes");
    }
    if (it != sessions_.end()) old = std::move(it->second);
    sessions_[node_id] = fresh;
    bindings_.erase(node_id);
  }
  if (old) old->close();
  return fresh;
}

void RelayHub::detach(const std::shared_ptr<Session>& session) {
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(session->node_id());
    if (it != sessions_.end() && it->second == session) {
      sessions_.erase(it);
      // Bounded like the sessions: an id bound beyond that many is forgotten first.
      if (bindings_.size() < options_.max_attached * 4) {
        bindings_[session->node_id()] = {session->owner_, std::chrono::steady_clock::now() + options_.binding_memory};
      }
    }
  }
  session->close();
}

std::shared_ptr<RelayHub::Session> RelayHub::find(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(node_id);
  return it == sessions_.end() ? nullptr : it->second;
}

bool RelayHub::take_share(size_t bytes, Clock::time_point deadline) {
  if (options_.shared_bytes_per_second <= 0) return true;
  Clock::time_point start;
  {
    std::lock_guard lock(share_mutex_);
    const Clock::time_point now = Clock::now();
    start = std::max(now, share_free_at_);
    if (start > deadline) return false;
    share_free_at_ = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(double(bytes) / options_.shared_bytes_per_second));
  }
  std::this_thread::sleep_until(start);  // holding the sender's stream: back-pressure
  return true;
}

bool RelayHub::forward(const std::string& node_id, v1::PipelineFrame frame, bool shared,
                       std::chrono::milliseconds wait) {
  const Clock::time_point deadline = Clock::now() + wait;
  std::shared_ptr<Session> session = find(node_id);
  if (!session) return false;
  if (shared && !take_share(frame.ByteSizeLong(), deadline)) return false;
  std::unique_lock lock(session->mutex_);
  if (!session->space_.wait_until(lock, deadline, [&] {
        return session->closed_ || session->queue_.size() < options_.max_queued_frames;
      })) {
    return false;
  }
  if (session->closed_) return false;
  v1::AttachDown down;
  *down.mutable_frame() = std::move(frame);
  session->queue_.push_back(std::move(down));
  session->ready_.notify_one();
  if (shared) ++shared_frames_;
  return true;
}

grpc::Status RelayHub::call(const std::string& node_id, const std::string& method, const std::string& request,
                            std::chrono::milliseconds timeout, std::string& reply) {
  std::shared_ptr<Session> session = find(node_id);
  if (!session) return {grpc::StatusCode::UNAVAILABLE, "node " + node_id + " is not attached to this relay"};
  std::unique_lock lock(session->mutex_);
  if (session->closed_) return {grpc::StatusCode::UNAVAILABLE, "node " + node_id + " detached"};
  const uint64_t id = session->next_call_++;
  v1::AttachDown down;
  down.mutable_call()->set_call(id);
  down.mutable_call()->set_method(method);
  down.mutable_call()->set_request(request);
  // Calls are small and rare: they go ahead of queued frames' limit rather than wait for room.
  session->queue_.push_back(std::move(down));
  session->pending_[id];
  session->ready_.notify_one();
  const bool done = session->answered_.wait_for(lock, timeout, [&] {
    return session->closed_ || session->pending_[id].done;
  });
  Session::Pending result = std::move(session->pending_[id]);
  session->pending_.erase(id);
  if (!result.done && session->closed_) return {grpc::StatusCode::UNAVAILABLE, "node " + node_id + " detached"};
  if (!done || !result.done) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "node " + node_id + " did not answer through this relay in time"};
  }
  reply = std::move(result.reply);
  return result.status;
}

bool RelayHub::attached(const std::string& node_id) const { return find(node_id) != nullptr; }

std::vector<std::string> RelayHub::attached_nodes() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, session] : sessions_) out.push_back(id);
  return out;
}

void RelayHub::stop() {
  std::map<std::string, std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    sessions.swap(sessions_);
  }
  for (auto& [id, session] : sessions) session->close();
}

}  // namespace px::swarm
