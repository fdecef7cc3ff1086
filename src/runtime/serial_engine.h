#pragma once
// SerialEngine: the simplest Engine. One worker thread runs one request at a time through
// the single-sequence generate() loop while later requests wait in a bounded FIFO queue. It
// serves the HTTP API until the continuous-batching engine takes over, and stays as the
// reference behaviour that engine must match (stop strings, stop tokens, logprobs, limits).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/engine.h"

namespace px {

class ModelShard;
class SerialRequest;

struct SerialEngineOptions {
  int n_ctx = 4096;          // context per request (capped by the model's training context)
  int n_threads = 0;         // compute threads; 0: one per hardware thread
  int max_queue = 64;        // requests that may wait while one runs (>= 1)
  int prefill_chunk = 256;   // prompt tokens per forward call
  std::string model_id;      // empty: the model file's name
};

class SerialEngine final : public Engine {
 public:
  // `shard` must hold the whole model (first and last layers). Throws px::Error for a shard
  // that does not, a tokenizer larger than the model's vocabulary, or invalid options.
  SerialEngine(std::shared_ptr<const ModelShard> shard, std::shared_ptr<const Tokenizer> tokenizer,
               SerialEngineOptions options);
  // Opens a GGUF file and loads the whole model and its tokenizer.
  static std::unique_ptr<SerialEngine> load(const std::string& path, SerialEngineOptions options);
  // Cancels the running request, ends every queued one with an error and joins the worker.
  ~SerialEngine() override;

  // Throws InvalidRequestError for an empty prompt, a prompt that leaves no room in the
  // context, token ids outside the vocabulary or invalid options; QueueFullError when
  // max_queue requests are already waiting.
  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::string model_id() const override { return model_id_; }
  int context_size() const override { return n_ctx_; }
  EngineStats stats() const override;

 private:
  struct Runtime;  // thread pool, KV cache and forward pass, used by the worker only
  void worker_loop();
  void run(SerialRequest& request);
  // Ends queued requests whose client cancelled them; caller holds mutex_.
  void drop_cancelled_locked();

  std::shared_ptr<const ModelShard> shard_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::string model_id_;
  int n_ctx_;
  int max_queue_;
  int prefill_chunk_;
  std::unique_ptr<Runtime> runtime_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<SerialRequest>> queue_;
  bool stopping_ = false;
  std::atomic<bool> stop_running_{false};
  std::thread worker_;

  std::atomic<int64_t> requests_total_{0};
  std::atomic<int64_t> requests_running_{0};
  std::atomic<int64_t> prompt_tokens_total_{0};
  std::atomic<int64_t> generated_tokens_total_{0};
  std::atomic<int64_t> kv_positions_used_{0};
};

}  // namespace px
