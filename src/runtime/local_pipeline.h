#pragma once
// A pipeline inside one process: the stages of a model, in layer order, each a StageExecutor
// with its own threads, chained by direct calls. A single node serving a whole model is the
// one-stage case; several stages in one process give the swarm's pipeline semantics (chunks,
// releases, the ring back to the head) without a network, for tests and benchmarks.
#include <memory>
#include <vector>

#include "runtime/request_head.h"
#include "runtime/stage_executor.h"

namespace px {

class ThreadPool;

class LocalPipeline : public PipelineEntry {
 public:
  // `shards` cover the model in order; `pools` has one pool per shard (pools are not shared
  // between concurrently running stages). Tokens go to `head`.
  LocalPipeline(std::vector<std::shared_ptr<const ModelShard>> shards, std::vector<ThreadPool*> pools,
                StageConfig config, RequestHead& head);
  ~LocalPipeline() override;  // stops the stages

  void open(StageRequestSetup setup, std::vector<int32_t> tokens) override;
  void append(RequestId request, int32_t position, int32_t token) override;
  void release(RequestId request) override;
  int64_t queued() const override;
  void add_stats(EngineStats& stats) const override;

  size_t stages() const { return stages_.size(); }
  StageStats stage_stats(size_t i) const { return stages_.at(i)->stats(); }

 private:
  class Link;
  std::vector<std::unique_ptr<Link>> links_;           // sink of stage i
  std::vector<std::unique_ptr<StageExecutor>> stages_;
};

}  // namespace px
