#pragma once
// The swarm as one node has heard it: the newest announcement per node id and when it arrived.
// A node is live while its newest announcement is not "leaving" and arrived within expire_after.
// Pure bookkeeping with time passed in, so discovery's rules are tested without a network; not
// thread-safe (Discovery guards it).
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

class LiveNodeTable {
 public:
  using Clock = std::chrono::steady_clock;

  // max_nodes bounds memory when someone floods the key with made-up node ids.
  explicit LiveNodeTable(Clock::duration expire_after, size_t max_nodes = 16384);

  enum class Update { Ignored, Full, Unchanged, Changed };

  // Records an announcement heard at `now`. Ignored: not newer (by sequence) than the one held
  // for its node, so it does not count as hearing the node. Full: a new node while max_nodes are
  // held. Changed: the live set changed or a live node's announcement differs in more than its
  // sequence number.
  Update update(const NodeAnnouncement& announcement, Clock::time_point now);

  // Forgets nodes not heard from within expire_after; true when one of them was live.
  bool expire(Clock::time_point now);

  // Live nodes by node id.
  std::vector<NodeAnnouncement> live(Clock::time_point now) const;

  // When the next held node expires; nullopt when none is held.
  std::optional<Clock::time_point> next_expiry() const;

  size_t size() const { return nodes_.size(); }

 private:
  struct Heard {
    NodeAnnouncement announcement;
    Clock::time_point at;
  };
  bool is_live(const Heard& heard, Clock::time_point now) const;

  Clock::duration expire_after_;
  size_t max_nodes_;
  std::map<std::string, Heard> nodes_;
};

}  // namespace px::swarm
