#include "runtime/local_pipeline.h"

#include "core/error.h"

namespace px {

// Stage i's sink: chunks and releases go to stage i + 1, tokens to the head.
class LocalPipeline::Link : public StageSink {
 public:
  Link(RequestHead& head) : head_(head) {}
  void set_next(StageExecutor* next) { next_ = next; }
  void forward(std::vector<StageChunk> chunks) override {
    if (next_) next_->receive(std::move(chunks));
  }
  void sampled(std::vector<SampledToken> tokens) override { head_.on_tokens(std::move(tokens)); }
  void released(RequestId request, bool) override {
    if (next_) next_->release(request);
  }

 private:
  RequestHead& head_;
  StageExecutor* next_ = nullptr;
};

LocalPipeline::LocalPipeline(std::vector<std::shared_ptr<const ModelShard>> shards, std::vector<ThreadPool*> pools,
                             StageConfig config, RequestHead& head) {
  if (shards.empty() || shards.size() != pools.size()) fail("a local pipeline needs one thread pool per shard");
  for (size_t i = 0; i < shards.size(); ++i) {
    const LayerRange want{i == 0 ? 0 : shards[i - 1]->range().end, shards[i]->range().end};
    if (shards[i]->range().begin != want.begin) fail("pipeline shards must be contiguous, in layer order");
  }
  if (!shards.front()->is_first() || !shards.back()->is_last()) fail("pipeline shards must cover every layer");
  for (size_t i = 0; i < shards.size(); ++i) {
    links_.push_back(std::make_unique<Link>(head));
    stages_.push_back(std::make_unique<StageExecutor>(std::move(shards[i]), *pools[i], config, *links_.back()));
  }
  for (size_t i = 0; i + 1 < stages_.size(); ++i) links_[i]->set_next(stages_[i + 1].get());
}

LocalPipeline::~LocalPipeline() {
  // Every thread stops before any stage is destroyed: a stage's thread calls its neighbour
  // and, through the head, the first stage.
  for (auto& stage : stages_) stage->stop();
}

void LocalPipeline::open(StageRequestSetup setup, std::vector<int32_t> tokens) {
  stages_.front()->open(std::move(setup), std::move(tokens));
}

void LocalPipeline::append(RequestId request, int32_t position, int32_t token) {
  stages_.front()->append(request, position, token);
}

void LocalPipeline::release(RequestId request) { stages_.front()->release(request); }

int64_t LocalPipeline::queued() const { return stages_.front()->stats().waiting; }

void LocalPipeline::add_stats(EngineStats& s) const {
  const StageStats first = stages_.front()->stats();
  s.requests_running = first.running;
  s.requests_queued = first.waiting;
  s.preemptions_total = first.preemptions;
  s.prefix_cache_hit_tokens = first.prefix_hit_tokens;
  s.prefix_cache_query_tokens = first.prefix_query_tokens;
  for (const auto& stage : stages_) s.kv_cache_usage = std::max(s.kv_cache_usage, stage->stats().kv_usage);
}

}  // namespace px
