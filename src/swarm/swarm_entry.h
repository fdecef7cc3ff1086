#pragma once
// The head's way into the swarm: for each request it asks the cluster view for the cheapest
// pipeline that covers every layer, stamps the route into the request's setup and sends the
// request to the route's first stage; appends and the release follow the same way. When no
// pipeline covers the model the request waits (up to route_wait) for one to appear — nodes
// joining, layers being reassigned — and then fails with a clear error. When a peer on a route
// fails, the requests on it fail back to the head, which opens them again elsewhere.
//
// Paired (--verify full): every request runs on two routes with no node in common, under two
// ids, and a token reaches the head only when both routes sampled it. When they differ, the
// arbiter (the head's ResultVerifier) decides; the head gets the decided token and then a
// failure that reopens the request on fresh routes (the losing route's caches hold the other
// token). Either route failing fails the pair: the head reopens both.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/request_head.h"
#include "swarm/cluster_view.h"
#include "swarm/message_sender.h"
#include "swarm/token_dispute.h"

namespace px::swarm {

struct SwarmEntryConfig {
  std::string self_address;                        // where last stages send tokens
  std::chrono::milliseconds route_wait{30000};     // how long a request may wait for a pipeline
  // A stage refused a route as stale: the node should ask its peers where they stand now.
  std::function<void()> on_stale_route;
  // A request is over: once per route it ran on (the result verifier samples these).
  std::function<void(const CompletedRoute&)> on_completed;
  // Paired mode: the second routes' ids are first_twin_id, first_twin_id + 1, ...
  bool paired = false;
  RequestId first_twin_id = 0;
  std::function<void(TokenDispute, std::function<void(TokenVerdict)>)> arbitrate;
};

class SwarmEntry : public PipelineEntry {
 public:
  SwarmEntry(ClusterView& view, MessageSender& sender, RequestHead& head, SwarmEntryConfig config);
  ~SwarmEntry() override;

  void open(StageRequestSetup setup, std::vector<int32_t> tokens) override;
  void append(RequestId request, int32_t position, int32_t token) override;
  void release(RequestId request) override;
  void completed(RequestId request, const std::vector<int32_t>& tokens) override;
  int64_t queued() const override;
  bool wait_until_available(std::string& why) override;
  void add_stats(EngineStats& stats) const override;
  double expected_seconds(RequestId request, int tokens) const override;
  // The request's route went silent: its stages get no routes until they answer a heartbeat.
  void stalled(RequestId request) override;

  // Tokens (and failures) from last stages, for the head. A failure that names a stale node
  // keeps routes off that node until it announces itself again.
  void on_tokens(std::vector<SampledToken> tokens);

  // A peer is gone (stream broken, heartbeats lost): every request routed through it fails
  // back to the head, which retries on another pipeline.
  void peer_failed(const std::string& node_id);

 private:
  struct Route {
    RequestId wire = 0;           // the id its stages know the request by
    std::string first_hop;
    std::vector<std::string> node_ids;
    std::vector<std::string> relay_ids;  // nodes relaying for it: their failure breaks it too
    std::vector<RouteHop> hops;
    double cost_seconds = 0;      // the router's estimate of one token through the route
    int first_sampled = 0;        // the positions its last stage samples start here
  };
  struct InFlight {
    std::vector<Route> routes;    // one; paired: two, the twin second
    StageRequestSetup setup;
    // Paired only: what the arbiter needs, and each route's token for the next position.
    std::vector<int32_t> history;
    std::optional<SampledToken> next[2];
    bool disputed = false;
    int disputed_at = 0;          // the position whose token the head decided
  };
  struct Waiting {
    StageRequestSetup setup;
    std::vector<int32_t> tokens;
    std::chrono::steady_clock::time_point deadline;
  };
  // Sends the request on a route; false when no pipeline covers the model right now.
  bool try_start(StageRequestSetup& setup, std::vector<int32_t>& tokens);
  // The route(s) a request would take now: one, or two disjoint when paired; empty when none.
  std::vector<ChosenRoute> choose_routes() const;
  // Paired: a route's token; fills `deliver` or `dispute`. Called with the lock held.
  void pair_token(RequestId head_id, int side, SampledToken token, std::vector<SampledToken>& deliver,
                  std::optional<TokenDispute>& dispute);
  void settle(RequestId head_id, RequestId twin, TokenVerdict verdict);
  void fail(RequestId request, const std::string& error);
  std::string no_cover_message() const;
  void retry_waiting();

  ClusterView& view_;
  MessageSender& sender_;
  RequestHead& head_;
  const SwarmEntryConfig config_;

  mutable std::mutex mutex_;
  std::map<RequestId, InFlight> in_flight_;     // by the head's id
  std::map<RequestId, RequestId> twins_;        // paired: the second route's id -> the head's
  RequestId next_twin_;
  std::vector<Waiting> waiting_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread retry_thread_;
};

}  // namespace px::swarm
