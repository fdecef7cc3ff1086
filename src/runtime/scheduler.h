#pragma once
// Continuous-batching scheduler: decides, step by step, which tokens of which requests run.
// It only decides; the executor runs the batch and the KV cache holds the state. Pure logic
// over request sizes, so it is tested without a model.
//
// Each step, under a token budget:
//  1. every running request that has finished its prefill decodes one token (decode first
//     keeps inter-token latency flat while prompts arrive);
//  2. running requests still in prefill continue with the next chunk of their prompt;
//  3. waiting requests are admitted first come, first served while the running set, the
//     budget and the KV capacity allow, starting their prefill.
// When the KV cache cannot hold the next tokens of the running requests, the most recently
// admitted one is preempted: its cache is dropped and it returns to the head of the queue to
// be recomputed later (prompt plus what it generated). Nobody starves: admission is FCFS and a
// preempted request is the next one admitted.
#include <cstdint>
#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

namespace px {

struct SchedulerConfig {
  int max_batch_tokens = 512;   // tokens per forward step
  int max_running = 16;         // sequences decoding at once
  int64_t kv_capacity_tokens = 1 << 16;  // KV cache positions across all sequences
};

// A contiguous run of one request's tokens to compute this step: [begin, begin + count).
struct ScheduledChunk {
  int64_t request = 0;
  int begin = 0;
  int count = 0;
  bool completes = false;  // the chunk reaches the end of the request's tokens: sample after it
};

struct SchedulePlan {
  std::vector<ScheduledChunk> chunks;
  std::vector<int64_t> preempted;  // their KV must be dropped before running the chunks
  int tokens() const;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config);
  const SchedulerConfig& config() const { return config_; }

  // A new request whose first `n_tokens` tokens (its prompt) need computing.
  void add(int64_t request, int n_tokens);
  // The request produced one more token (after a step whose chunk completed it). It may have
  // been preempted meanwhile (in a pipeline the token comes back later): then it grows waiting.
  void grow(int64_t request);
  // Finished or cancelled: forget it (running or waiting).
  void remove(int64_t request);

  // Called when a waiting request is about to be admitted: returns how many of its leading
  // tokens are already computed (a prefix-cache hit; its KV blocks are now allocated), or -1
  // when it cannot be placed yet (admission stops for this step).
  using AdmitFn = std::function<int(int64_t request)>;
  SchedulePlan schedule(const AdmitFn& admit = {});

  // Applies a plan's progress: the chunks' tokens are now computed. Call after the step ran.
  void commit(const SchedulePlan& plan);

  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  int64_t kv_tokens_in_use() const;
  bool idle() const { return running_.empty() && waiting_.empty(); }
  // Something could run: a waiting request, or a running one with tokens not yet computed
  // (in a pipeline, a request whose token is still on its way back has none).
  bool has_uncomputed_tokens() const;
  // Running requests ready to decode (exactly their newest token left to compute), and all
  // running requests past their prefill (ready, or with their token still on its way).
  size_t ready_decodes() const;
  size_t decoding() const;

 private:
  struct Entry {
    int64_t request;
    int n_tokens;     // tokens the request has (prompt + generated)
    int n_computed;   // tokens whose KV is in the cache
  };
  Entry* find_running(int64_t request);
  void preempt_last(SchedulePlan& plan);

  SchedulerConfig config_;
  std::vector<Entry> running_;  // in admission order
  std::deque<Entry> waiting_;
};

}  // namespace px
