#pragma once
// The serving engine of one node holding the whole model: a request head over a one-stage
// local pipeline. The stage's executor thread runs continuous batching over every submitted
// request: each step its Scheduler picks decode tokens and prefill chunks under a token
// budget, the ForwardPass runs them as one batch, and the requests whose rows produced logits
// sample their next token, which the head streams out and feeds back. Results do not depend
// on the batching (the forward pass is batch-invariant and sampling is keyed by seed and
// position), nor on how many stages the model is cut into.
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/local_pipeline.h"
#include "runtime/request_head.h"

namespace px {

class ThreadPool;

struct BatchEngineConfig {
  int n_threads = 0;           // compute threads of the pool load() creates; 0: all cores
  SchedulerConfig scheduler;   // its kv_capacity_tokens is derived from the cache below
  int context_size = 4096;     // positions per sequence
  int64_t kv_cache_tokens = 1 << 16;  // KV positions across all sequences
  int64_t kv_cache_mb = 0;     // load(): when > 0, sizes the cache in MiB instead
  int kv_block_size = 16;
  bool prefix_caching = true;
  int max_queue = 256;       // waiting requests before submit() throws QueueFullError
};

StageConfig stage_config(const BatchEngineConfig& config);

class BatchEngine : public Engine {
 public:
  // One stage over `shard` (all layers), or several in-process stages over `shards` (one pool each).
  BatchEngine(std::shared_ptr<const ModelShard> shard, std::shared_ptr<const Tokenizer> tokenizer,
              ThreadPool& pool, BatchEngineConfig config, std::string model_id);
  BatchEngine(std::vector<std::shared_ptr<const ModelShard>> shards, std::shared_ptr<const Tokenizer> tokenizer,
              std::vector<ThreadPool*> pools, BatchEngineConfig config, std::string model_id);
  ~BatchEngine() override;

  // Opens a GGUF model or Hugging Face directory (all layers: a one-stage pipeline) with its
  // own thread pool. The context is capped by the model's training context; model_id empty:
  // the file's name.
  static std::unique_ptr<BatchEngine> load(const std::string& path, BatchEngineConfig config,
                                           std::string model_id = {});

  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) override {
    return head_->submit(std::move(prompt), std::move(options));
  }
  const Tokenizer& tokenizer() const override { return head_->tokenizer(); }
  std::string model_id() const override { return head_->model_id(); }
  int context_size() const override { return head_->context_size(); }
  EngineStats stats() const override { return head_->stats(); }
  const LocalPipeline& pipeline() const { return *pipeline_; }

 private:
  std::unique_ptr<ThreadPool> owned_pool_;  // set by load(); declared first, destroyed last
  std::unique_ptr<RequestHead> head_;
  std::unique_ptr<LocalPipeline> pipeline_;
};

}  // namespace px
