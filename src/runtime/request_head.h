#pragma once
// The head of requests: the part of a node that owns what it accepted from its API. It
// validates and tokenizes nothing itself (the frontend passes token ids) but keeps each
// request's whole token history, its options, stop strings and streaming detokenizer; it
// opens the request on a pipeline's first stage, takes the tokens the last stage samples,
// turns them into stream events and feeds them back to the first stage — a ring. A request
// whose pipeline fails is opened again with its whole history (stages that still hold its
// prefix reuse it) and, since sampling is keyed by seed and position, continues unchanged.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "runtime/engine.h"
#include "runtime/stage_messages.h"
#include "tokenizer/tokenizer.h"

namespace px {

// The way from a head into pipelines: a local chain of stages, or the swarm.
class PipelineEntry {
 public:
  virtual ~PipelineEntry() = default;
  // Starts a request on a pipeline (or restarts it, with its whole history, after a failure).
  // Throws QueueFullError when none can take it now, px::Error when none ever could.
  virtual void open(StageRequestSetup setup, std::vector<int32_t> tokens) = 0;
  virtual void append(RequestId request, int32_t position, int32_t token) = 0;
  virtual void release(RequestId request) = 0;
  // Called just before release() when the request is over (finished, failed or cancelled):
  // `tokens` is its whole history, prompt and generated (a verifier may replay it).
  virtual void completed(RequestId request, const std::vector<int32_t>& tokens) {}
  // Blocks (for a bounded time) until a pipeline could take a request; false, with the reason,
  // when none appeared. A local pipeline is always available.
  virtual bool wait_until_available(std::string& why) { return true; }
  // Requests waiting for admission; submit() refuses new ones past max_queue.
  virtual int64_t queued() const = 0;
  // Adds running / KV / prefix-cache figures to the head's own counts.
  virtual void add_stats(EngineStats& stats) const = 0;
  // How long the request's route should take to compute `tokens` positions and bring back a
  // token (0: no estimate). The head's progress watchdog waits at least this long. Called with
  // the head's lock held: it must not call back into the head.
  virtual double expected_seconds(RequestId request, int tokens) const { return 0; }
  // The watchdog gave up on the request's route (before releasing it): routes should avoid it
  // until its peers show they are well.
  virtual void stalled(RequestId request) {}
};

struct HeadConfig {
  int context_size = 4096;
  int n_vocab = 0;
  int max_queue = 256;
  int max_attempts = 1;          // opens per request; more than 1 retries failed pipelines
  RequestId first_id = 1;        // ids are first_id, first_id + 1, ... (a swarm head mixes in its node id)
  // Progress watchdog: a request that gets no token for this long (or longer, when its route's
  // estimate says so) is opened again elsewhere, and the wait doubles for its next try. A lost
  // message then costs a pause, never the request. 0: off (a local pipeline loses nothing).
  std::chrono::milliseconds progress_timeout{0};
  // Whether stage 0 may skip positions its prefix cache holds. Off in open swarms: a later
  // stage's cached prefix may have been computed from a dishonest upstream's output, and reusing
  // it would spread the damage past the attacker's ban (and get the honest stage blamed).
  bool reuse_prefix = true;
};

class RequestHead : public Engine {
 public:
  RequestHead(std::shared_ptr<const Tokenizer> tokenizer, HeadConfig config, std::string model_id);
  ~RequestHead() override;  // shutdown()
  // Ends every request with Cancelled and ignores whatever the pipeline still sends; call it
  // before the pipeline is destroyed. Idempotent.
  void shutdown();
  // Must be called once, before submit().
  void connect(PipelineEntry& entry) { entry_ = &entry; }

  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::string model_id() const override { return model_id_; }
  int context_size() const override { return config_.context_size; }
  EngineStats stats() const override;

  // From the last stage (or a failing one): any thread.
  void on_tokens(std::vector<SampledToken> tokens);

 private:
  struct Request;
  struct Action;
  void handle(const SampledToken& token, std::vector<Action>& actions);
  void accept_token(Request& r, const SampledToken& token, std::vector<Action>& actions);
  // `counted`: the failure counts against max_attempts. Not counted: the route, not the request,
  // was at fault (a stage refused a plan that raced a change of the swarm, the route went silent,
  // or it failed after the request had made progress on it); such retries are bounded by their
  // number and by the watchdog's growing waits.
  void retry_or_fail(Request& r, const std::string& error, std::vector<Action>& actions, bool counted = true);
  void watch_progress(std::chrono::steady_clock::time_point now, std::vector<Action>& actions);
  void finish(Request& r, FinishReason reason, std::string error, std::vector<Action>& actions);
  void perform(std::vector<Action>& actions);
  void reap();

  std::shared_ptr<const Tokenizer> tokenizer_;
  HeadConfig config_;
  std::string model_id_;
  PipelineEntry* entry_ = nullptr;

  mutable std::mutex mutex_;
  std::unordered_map<RequestId, std::shared_ptr<Request>> requests_;  // by current attempt's id
  RequestId next_id_;
  std::atomic<int64_t> requests_total_{0}, prompt_tokens_total_{0}, generated_tokens_total_{0};

  // Notices cancelled and timed-out requests that no token is passing through.
  std::condition_variable reaper_wake_;
  bool stopping_ = false;  // the reaper stops
  bool closed_ = false;    // after shutdown(): no submissions, tokens ignored
  std::thread reaper_;
};

}  // namespace px
