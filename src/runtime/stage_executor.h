#pragma once
// The executor of one pipeline stage: a thread that runs continuous batching over the requests
// passing through this node's layers. The same class serves a single node (first and last
// stage at once) and every stage of a swarm; it knows nothing about networking — what it
// produces goes to a StageSink, which passes it on in process or over the wire.
//
//  - The first stage owns admission: requests are opened and grown by their head (open /
//    append); each step its Scheduler picks decode tokens and prefill chunks under a token
//    budget and the KV capacity, preempting the newest request when the cache runs out.
//  - Later stages run whatever chunks arrived (receive), in arrival order, one chunk per
//    request per step, as one batch.
//  - The last stage samples every chunk that reaches a request's newest token; the others
//    pass the chunks' hidden states on (forward).
// Each stage's KV cache is paged and prefix-cached; a request's first chunk at a stage brings
// the token history, so a stage that already holds its prefix (a retried request) reuses it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "model/forward.h"
#include "runtime/scheduler.h"
#include "runtime/stage_fault.h"
#include "runtime/stage_messages.h"

namespace px {

class ThreadPool;

struct StageConfig {
  SchedulerConfig scheduler;          // first stage; max_batch_tokens also caps later stages' steps
  int context_size = 4096;            // positions per sequence
  int64_t kv_cache_tokens = 1 << 16;  // KV positions across all sequences
  int kv_block_size = 16;
  bool prefix_caching = true;
  // A request that sees no message for this long is dropped: its release was lost (a head
  // that died, a network that dropped it) and its KV would leak otherwise.
  std::chrono::milliseconds idle_timeout{120000};
  // Not the last stage: each chunk sent on carries a commitment to its hidden states with this
  // many entries per row (runtime/state_commitment.h), for verifiers. 0: none.
  int commit_top_k = 0;
  // A test aid: this stage plays a dishonest worker (runtime/stage_fault.h).
  StageFault fault;
};

// Where a stage's results go. Called from the executor thread, in step order.
class StageSink {
 public:
  virtual ~StageSink() = default;
  // Not the last stage: the rows of one step, for the next stage.
  virtual void forward(std::vector<StageChunk> chunks) = 0;
  // The last stage's tokens; any stage's failures (error set) for requests it cannot run.
  virtual void sampled(std::vector<SampledToken> tokens) = 0;
  // The request's state here is gone; later stages must drop theirs too. `final`: the request
  // is over (released by its head, or failed). Not final: the first stage preempted it and will
  // send it again from position 0, with its setup, along the same route.
  virtual void released(RequestId request, bool final) = 0;
};

struct StageStats {
  int64_t running = 0;                // requests with KV on this stage
  int64_t waiting = 0;                // first stage: requests queued for admission
  double kv_usage = 0;                // fraction of KV blocks in use
  int64_t free_kv_tokens = 0;
  int64_t preemptions = 0;
  int64_t prefix_hit_tokens = 0;
  int64_t prefix_query_tokens = 0;
  int64_t steps = 0;
  double busy_seconds = 0;            // time spent running forward passes
  double recent_step_seconds = 0;     // moving average of a step's duration (0: none yet)
};

class StageExecutor {
 public:
  StageExecutor(std::shared_ptr<const ModelShard> shard, ThreadPool& pool, StageConfig config, StageSink& sink);
  ~StageExecutor();  // stop()
  // Stops the executor thread (pending work is dropped); calls after it are ignored. Idempotent.
  void stop();
  StageExecutor(const StageExecutor&) = delete;
  StageExecutor& operator=(const StageExecutor&) = delete;

  const ModelShard& shard() const { return *shard_; }
  const StageConfig& config() const { return config_; }

  // First stage, from the head. Invalid input (unknown request, wrong position, a second
  // open) comes back through sink.sampled as an error for that request.
  void open(StageRequestSetup setup, std::vector<int32_t> prompt);
  void append(RequestId request, int32_t position, int32_t token);
  // Later stages, from the previous stage.
  void receive(std::vector<StageChunk> chunks);
  // Any stage: the request is over here; the release is passed on through the sink.
  void release(RequestId request);

  StageStats stats() const;

 private:
  struct Request;
  struct Event;
  void post(Event event);  // any thread: into the inbox, waking the executor
  void loop();
  void apply(Event& event);
  bool has_work() const;
  void step();
  void plan_first_stage();
  void plan_later_stage();
  void split_decodes_into_microbatches();
  void split_prefill_across_stages();
  void gather_returning_tokens();
  void run_batch();
  void fail_request(RequestId id, const std::string& error);
  void drop(RequestId id, bool notify_downstream);
  Request* find(RequestId id);
  void drop_idle();
  void publish_stats();

  std::shared_ptr<const ModelShard> shard_;
  StageConfig config_;
  StageSink& sink_;
  KvCache cache_;
  ForwardPass pass_;
  Scheduler scheduler_;

  // Executor-thread state.
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests_;
  std::unordered_map<int64_t, RequestId> by_seq_;      // scheduler / KV sequence id -> request
  int64_t next_seq_ = 1;
  std::deque<RequestId> arrivals_;                       // later stages: requests with chunks to run, FIFO
  struct Planned {
    RequestId request;
    int begin, count;
    bool sample;
  };
  std::vector<Planned> planned_;
  std::chrono::steady_clock::time_point next_idle_check_{};
  size_t microbatch_cap_ = 0;     // first stage: decodes sent per step (see split_decodes_...)
  bool tokens_return_by_network_ = false;  // ... of requests whose head is another process
  SchedulePlan plan_;
  ForwardBatch batch_;
  ForwardResult result_;

  // Shared with the callers.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Event> inbox_;
  std::atomic<bool> pending_events_{false};  // inbox_ is not empty (read without the lock)
  bool stopping_ = false;
  StageStats stats_;  // guarded by mutex_

  std::thread thread_;
};

}  // namespace px
