#pragma once
// One accepted completion request while it runs: its n engine streams (one per choice), the
// text and tokens they produced, and the latency metrics they feed. The HTTP layer pulls
// from it either SSE chunks (stream: true) or, once every choice finished, the whole
// response. Destroying a session cancels whatever is still generating (the client left).
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/metrics.h"
#include "server/openai_response.h"

namespace px::server {

class CompletionSession {
 public:
  using Clock = std::chrono::steady_clock;

  CompletionSession(std::shared_ptr<Engine> engine, ResponseContext context, bool logprobs, int prompt_tokens,
                    std::vector<std::shared_ptr<RequestStream>> streams, ServerMetrics& metrics,
                    Clock::time_point arrival);
  ~CompletionSession();
  CompletionSession(const CompletionSession&) = delete;
  CompletionSession& operator=(const CompletionSession&) = delete;

  // Streaming: waits up to `wait` for events and appends their SSE frames to `out` (chat's
  // role chunks first; the usage chunk and "data: [DONE]" last). Returns false once the
  // stream is complete.
  bool next_sse(std::string& out, std::chrono::milliseconds wait);

  // Non-streaming: waits up to `wait` for events; true once every choice has finished.
  bool collect(std::chrono::milliseconds wait);
  // After collect() returned true: the whole response, or {"error": ...} when a choice failed.
  nlohmann::json response() const;
  // The engine's message when a choice ended with FinishReason::Error, else "".
  const std::string& error() const { return error_; }

  // Stops every choice still generating.
  void cancel();

 private:
  struct Choice {
    std::shared_ptr<RequestStream> stream;
    ChoiceResult result;
    bool done = false;
    bool seen_token = false;
    Clock::time_point last_token;
    size_t text_offset = 0;  // completions logprobs: bytes of token text so far
  };

  // Reads every event that is ready, waiting up to `wait` when none is; calls
  // on_event(choice index, event) for each. Returns whether any event came.
  template <typename OnEvent>
  bool poll(std::chrono::milliseconds wait, OnEvent&& on_event);
  void record(int index, const StreamEvent& event);
  bool all_done() const;
  // The SSE frames for one event of choice `index`.
  void append_event_sse(std::string& out, int index, const StreamEvent& event);

  std::shared_ptr<Engine> engine_;  // keeps the tokenizer alive for logprob texts
  ResponseContext context_;
  bool logprobs_;
  int prompt_tokens_;
  std::vector<Choice> choices_;
  ServerMetrics& metrics_;
  Clock::time_point arrival_;
  std::string error_;
  bool sent_roles_ = false;
  bool sent_done_ = false;
};

}  // namespace px::server
