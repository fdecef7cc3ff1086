#pragma once
// An in-process network for the swarm's data plane: stage hosts, a head's entry and its result
// verifier exchange the pipeline messages without gRPC, in send order on one thread.
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "swarm/result_verifier.h"
#include "swarm/stage_host.h"
#include "swarm/swarm_entry.h"

namespace px::swarm {

// A head entry's configuration for these tests: tokens come to `address`.
inline SwarmEntryConfig entry_config(std::string address, std::chrono::milliseconds route_wait) {
  SwarmEntryConfig c;
  c.self_address = std::move(address);
  c.route_wait = route_wait;
  return c;
}

// Delivers messages in send order on one thread, to stage hosts by address or to the head.
class FakeNetwork : public MessageSender {
 public:
  FakeNetwork() : thread_([this] { deliver(); }) {}
  ~FakeNetwork() override { stop(); }
  // No delivery after this returns (call it before the hosts and the head go away).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void add_stage(const std::string& address, StageHost* host) {
    std::lock_guard lock(mutex_);
    stages_[address] = host;
  }
  void set_head(const std::string& address, SwarmEntry* head, ResultVerifier* verifier = nullptr) {
    std::lock_guard lock(mutex_);
    head_address_ = address;
    head_ = head;
    verifier_ = verifier;
  }
  // Another stage host takes the address (a process restarted on a dead one's port).
  void replace_stage(const std::string& address, StageHost* host) { add_stage(address, host); }
  // The peer vanishes: what is sent to it is lost, what it sends goes nowhere.
  void kill(const std::string& address) {
    std::lock_guard lock(mutex_);
    stages_.erase(address);
  }
  // The peer takes messages and never answers (a link that lost them, staying up).
  void blackhole(const std::string& address) {
    std::lock_guard lock(mutex_);
    blackholes_.insert(address);
  }
  bool send(const std::string& address, PipelineMessage message) override {
    std::lock_guard lock(mutex_);
    if (blackholes_.count(address)) return true;
    if (address != head_address_ && !stages_.count(address)) return false;
    queue_.emplace_back(address, std::move(message));
    wake_.notify_all();
    return true;
  }

 private:
  void deliver() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto [address, message] = std::move(queue_.front());
      queue_.pop_front();
      StageHost* host = stages_.count(address) ? stages_[address] : nullptr;
      SwarmEntry* head = address == head_address_ ? head_ : nullptr;
      ResultVerifier* verifier = address == head_address_ ? verifier_ : nullptr;
      lock.unlock();
      std::visit(
          [&](auto&& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, TokensMessage>) {
              if (verifier) std::erase_if(m.tokens, [&](const SampledToken& t) { return verifier->on_token(t); });
              if (head && !m.tokens.empty()) head->on_tokens(std::move(m.tokens));
            } else if constexpr (std::is_same_v<T, ReportsMessage>) {
              if (verifier) verifier->on_reports(std::move(m.reports));
            } else if (host) {
              if constexpr (std::is_same_v<T, OpenMessage>) host->on_open(std::move(m));
              if constexpr (std::is_same_v<T, AppendMessage>) host->on_append(m);
              if constexpr (std::is_same_v<T, ChunksMessage>) host->on_chunks(std::move(m));
              if constexpr (std::is_same_v<T, ReleaseMessage>) host->on_release(m);
            }
          },
          message);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, PipelineMessage>> queue_;
  std::map<std::string, StageHost*> stages_;
  std::set<std::string> blackholes_;
  std::string head_address_;
  SwarmEntry* head_ = nullptr;
  ResultVerifier* verifier_ = nullptr;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace px::swarm
