#pragma once
// The Model Shard Holder of a swarm node: it holds the layers the scheduler assigned (loaded
// from this node's own copy of the model), runs them with a StageExecutor, and passes what the
// executor produces along each request's route — chunks to the next stage, tokens to the
// request's head. A new assignment swaps the shard without restarting the process; requests
// caught on the old range fail back to their heads, which retry elsewhere. Work meant for what
// this node no longer is (a route naming another node id, or another range: plans that raced a
// reassignment or a restart on the same port) is refused back to the head as a stale route,
// never computed and never dropped in silence.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "model/model_shard.h"
#include "runtime/stage_executor.h"
#include "swarm/message_sender.h"

namespace px {
class ThreadPool;
}

namespace px::swarm {

class StageHost : public StageSink {
 public:
  StageHost(std::string model_path, std::string self_address, std::string self_id, int n_threads, StageConfig config,
            MessageSender& sender);
  ~StageHost() override;

  // Holds layers [begin, end) from now on (begin == end: nothing). Throws px::Error when the
  // range is invalid or the shard cannot be loaded; the previous range is then kept.
  void assign(LayerRange range);
  std::optional<LayerRange> range() const;
  StageStats stats() const;
  size_t requests() const;  // requests whose route passes here

  // The data plane, from the network (any thread).
  void on_open(OpenMessage message);
  void on_append(const AppendMessage& message);
  void on_chunks(ChunksMessage message);
  void on_release(const ReleaseMessage& message);

  // StageSink: from the executor thread.
  void forward(std::vector<StageChunk> chunks) override;
  void sampled(std::vector<SampledToken> tokens) override;
  void released(RequestId request, bool final) override;

 private:
  struct Hops {
    std::string head;
    std::string next;  // empty on the last stage
    bool report_hidden = false;  // a verification replay: the head gets this stage's output rows
  };
  // Where the request goes after this stage; false (and a stale-route refusal to its head) when
  // the route does not name this node, by id, with the range it holds now. Call with
  // stage_mutex_ held (shared), so the range cannot change meanwhile.
  bool learn(const StageRequestSetup& setup);
  // What the head learns of a chunk this stage sends on (its commitment; a replay's rows too).
  StageReport report(StageChunk& chunk, const Hops& hops) const;
  // Why this node cannot be `hop` (empty when it can): another node's id, or another range.
  std::string mismatch(const RouteHop& hop) const;
  void fail_to_head(const std::string& head, RequestId request, const std::string& error,
                    const std::string& stale_node = {});

  const std::string model_path_;
  const std::string self_address_;
  const std::string self_id_;
  const StageConfig config_;
  MessageSender& sender_;
  std::unique_ptr<ThreadPool> pool_;

  mutable std::shared_mutex stage_mutex_;  // shared: data plane; exclusive: assign()
  std::shared_ptr<const ModelShard> shard_;
  std::unique_ptr<StageExecutor> executor_;

  mutable std::mutex routes_mutex_;
  std::map<RequestId, Hops> routes_;
};

}  // namespace px::swarm
