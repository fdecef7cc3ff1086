#pragma once
// The boundary between frontends (HTTP API, CLI) and the serving runtime. A frontend submits a
// tokenized prompt with its options and reads a stream of events; the engine owns scheduling,
// batching, the KV cache, sampling, stop handling and detokenization. Frontends never touch
// the model.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "sampling/sampler.h"

namespace px {

class Tokenizer;

struct RequestOptions {
  int max_tokens = 256;                 // generated tokens at most (capped by the context)
  SamplingParams sampling;
  std::vector<std::string> stop;        // stop strings; the text before one is returned
  std::vector<int32_t> stop_tokens;     // extra stop token ids (end-of-generation ids always stop)
  bool ignore_eos = false;              // keep going past end-of-generation tokens
  bool logprobs = false;                // report each generated token's logprob
  int top_logprobs = 0;                 // and this many alternatives (0..20)
  std::chrono::milliseconds timeout{0}; // 0: none; otherwise the request ends with Timeout
  uint64_t stream_id = 0;               // RNG stream: keeps n > 1 choices apart with one seed
};

enum class FinishReason { None, Stop, Length, Cancelled, Timeout, Error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", ...

struct GeneratedToken {
  int32_t id = 0;
  std::string text;                      // the token's own bytes (may be part of a character)
  float logprob = 0;
  std::vector<TokenLogprob> top;         // when top_logprobs > 0
};

// One step of a request's output. Text is complete UTF-8 and never contains (part of) a stop
// string; the last event of a request has finish != None.
struct StreamEvent {
  std::string text;
  std::vector<GeneratedToken> tokens;
  FinishReason finish = FinishReason::None;
  std::string error;                     // when finish == Error
  int prompt_tokens = 0;
  int completion_tokens = 0;             // so far
};

class RequestStream {
 public:
  virtual ~RequestStream() = default;
  // Waits up to `wait` for the next event; false when none came in time. After the final
  // event (finish != None) it returns false at once.
  virtual bool next(StreamEvent& event, std::chrono::milliseconds wait) = 0;
  // Stops generation (a client that went away); the request finishes with Cancelled.
  virtual void cancel() = 0;
};

// Thrown by submit() when the queue is full: the frontend answers 429 with Retry-After.
class QueueFullError : public Error {
 public:
  using Error::Error;
};
// Thrown by submit() when nothing can serve the request now, e.g. no pipeline of a swarm
// covers the model (after waiting for one): the frontend answers 503.
class UnavailableError : public Error {
 public:
  using Error::Error;
};
// Thrown by submit() for a request that can never run (prompt longer than the context,
// invalid options): the frontend answers 400.
class InvalidRequestError : public Error {
 public:
  using Error::Error;
};

struct EngineStats {
  int64_t requests_total = 0;
  int64_t requests_running = 0;
  int64_t requests_queued = 0;
  int64_t prompt_tokens_total = 0;
  int64_t generated_tokens_total = 0;
  double kv_cache_usage = 0;             // fraction of KV blocks in use, 0..1
  int64_t preemptions_total = 0;         // requests preempted (and later recomputed)
  int64_t prefix_cache_hit_tokens = 0;   // prompt tokens whose KV came from the prefix cache
  int64_t prefix_cache_query_tokens = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual std::string model_id() const = 0;
  virtual int context_size() const = 0;
  virtual EngineStats stats() const = 0;
};

}  // namespace px
