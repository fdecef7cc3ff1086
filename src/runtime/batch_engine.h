#pragma once
// The serving engine of one node: an executor thread that runs continuous batching over
// every submitted request. Each step the Scheduler picks decode tokens and prefill chunks
// under a token budget, the ForwardPass runs them as one batch over the model shard, and the
// requests whose rows produced logits sample their next token. Results do not depend on the
// batching (the forward pass is batch-invariant and sampling is keyed by seed and position).
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "model/forward.h"
#include "runtime/engine.h"
#include "runtime/request_channel.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

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

class BatchEngine : public Engine {
 public:
  BatchEngine(std::shared_ptr<const ModelShard> shard, std::shared_ptr<const Tokenizer> tokenizer,
              ThreadPool& pool, BatchEngineConfig config, std::string model_id);
  ~BatchEngine() override;

  // Opens a GGUF model (all layers: a one-stage pipeline) with its own thread pool. The
  // context is capped by the model's training context; model_id empty: the file's name.
  static std::unique_ptr<BatchEngine> load(const std::string& path, BatchEngineConfig config,
                                           std::string model_id = {});

  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::string model_id() const override { return model_id_; }
  int context_size() const override { return config_.context_size; }
  EngineStats stats() const override;

 private:
  struct Request;
  void loop();
  void admit_submissions();
  void drop_finished_or_cancelled();
  void publish_counts();
  void step();
  void on_sampled(Request& r, int32_t token, const SampleInfo& info);
  void finish(Request& r, FinishReason reason, std::string error = {});

  std::unique_ptr<ThreadPool> owned_pool_;  // set by load(); declared first, destroyed last
  std::shared_ptr<const ModelShard> shard_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  BatchEngineConfig config_;
  std::string model_id_;
  KvCache cache_;
  ForwardPass pass_;
  Scheduler scheduler_;

  // Executor-thread state.
  std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;
  ForwardBatch batch_;
  ForwardResult result_;

  // Shared with submit().
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Request>> inbox_;
  bool stopping_ = false;
  int64_t next_id_ = 1;
  std::atomic<int64_t> queued_{0}, running_{0}, requests_total_{0}, prompt_tokens_total_{0},
      generated_tokens_total_{0};
  std::atomic<double> kv_usage_{0};
  std::atomic<int64_t> preemptions_{0}, prefix_hit_tokens_{0}, prefix_query_tokens_{0};

  std::thread thread_;
};

}  // namespace px
