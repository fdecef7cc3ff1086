#pragma once
// Test doubles for the HTTP server: a FakeEngine that records what the server submits and
// answers with scripted events, and a tokenizer built from the synthetic models' vocabulary.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/builtin_vocab.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace px::test {

inline std::shared_ptr<Tokenizer> builtin_tokenizer() {
  const BuiltinVocab& b = builtin_vocab();
  Vocab v;
  v.kind = VocabKind::Bpe;
  v.pre = "default";
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    TokenInfo t;
    t.text = b.tokens[i];
    t.type = static_cast<TokenType>(b.token_types[i]);
    v.tokens.push_back(std::move(t));
  }
  v.merges = b.merges;
  v.bos_id = b.bos_id;
  v.eos_id = b.eos_id;
  v.eot_id = b.eot_id;
  v.add_bos = true;
  v.chat_template = b.chat_template;
  return Tokenizer::from_vocab(std::move(v));
}

class FakeStream final : public RequestStream {
 public:
  bool next(StreamEvent& event, std::chrono::milliseconds wait) override {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, wait, [&] { return !events_.empty(); })) return false;
    event = std::move(events_.front());
    events_.pop_front();
    return true;
  }
  void cancel() override {
    if (cancelled_.exchange(true)) return;
    StreamEvent last;
    last.finish = FinishReason::Cancelled;
    push(std::move(last));
  }
  void push(StreamEvent event) {
    {
      std::lock_guard lock(mutex_);
      if (finished_) return;
      finished_ = event.finish != FinishReason::None;
      events_.push_back(std::move(event));
    }
    cv_.notify_all();
  }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
};

struct Submission {
  std::vector<int32_t> prompt;
  RequestOptions options;
  std::shared_ptr<FakeStream> stream;
};

// Each accepted request yields one event per piece (a token whose text is the piece, with
// logprob -(i+1)/10 and top_logprobs alternatives), then a final event with `finish`.
class FakeEngine final : public Engine {
 public:
  std::vector<std::string> pieces = {"Hello", " world"};
  FinishReason finish = FinishReason::Stop;
  std::string error_message;          // with finish == Error
  bool hold = false;                  // accepted requests produce nothing (disconnect tests)
  int accept_limit = -1;              // submissions past this many throw QueueFullError
  bool reject_invalid = false;        // submit throws InvalidRequestError
  int n_ctx = 64;

  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, RequestOptions options) override {
    std::lock_guard lock(mutex_);
    if (reject_invalid) throw InvalidRequestError("the fake engine rejects this request");
    if (accept_limit >= 0 && int(submissions_.size()) >= accept_limit) throw QueueFullError("fake queue is full");
    auto stream = std::make_shared<FakeStream>();
    if (!hold) script(*stream, int(prompt.size()), options);
    submissions_.push_back({std::move(prompt), std::move(options), stream});
    return stream;
  }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::string model_id() const override { return "fake-model"; }
  int context_size() const override { return n_ctx; }
  EngineStats stats() const override {
    std::lock_guard lock(mutex_);
    EngineStats s;
    s.requests_total = static_cast<int64_t>(submissions_.size());
    s.requests_running = 1;
    s.requests_queued = 2;
    s.prompt_tokens_total = 30;
    s.generated_tokens_total = 40;
    s.kv_cache_usage = 0.25;
    return s;
  }

  std::vector<Submission> submissions() const {
    std::lock_guard lock(mutex_);
    return submissions_;
  }

  // The ids and logprobs the script gives its tokens.
  static int32_t token_id(size_t i) { return int32_t('a' + i); }
  static float token_logprob(size_t i) { return -float(i + 1) / 10.0f; }
  static int32_t alternative_id(int k) { return int32_t('A' + k); }
  static float alternative_logprob(int k) { return -float(k + 1); }

 private:
  void script(FakeStream& stream, int prompt_tokens, const RequestOptions& options) const {
    for (size_t i = 0; i < pieces.size(); ++i) {
      StreamEvent e;
      GeneratedToken t;
      t.id = token_id(i);
      t.text = pieces[i];
      t.logprob = token_logprob(i);
      for (int k = 0; k < options.top_logprobs; ++k) t.top.push_back({alternative_id(k), alternative_logprob(k)});
      e.tokens.push_back(std::move(t));
      e.text = pieces[i];
      e.prompt_tokens = prompt_tokens;
      e.completion_tokens = int(i + 1);
      stream.push(std::move(e));
    }
    StreamEvent last;
    last.finish = finish;
    last.error = error_message;
    last.prompt_tokens = prompt_tokens;
    last.completion_tokens = int(pieces.size());
    stream.push(std::move(last));
  }

  std::shared_ptr<Tokenizer> tokenizer_ = builtin_tokenizer();
  mutable std::mutex mutex_;
  std::vector<Submission> submissions_;
};

}  // namespace px::test
