#include "runtime/serial_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/kv_cache.h"
#include "model/model_shard.h"
#include "runtime/generate.h"
#include "runtime/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace px {

// One request: its inputs, and the events the worker produced that the frontend has not read.
class SerialRequest final : public RequestStream {
 public:
  using Clock = std::chrono::steady_clock;

  SerialRequest(std::vector<int32_t> prompt, RequestOptions options)
      : prompt_(std::move(prompt)), options_(std::move(options)) {
    deadline_ = options_.timeout.count() > 0 ? Clock::now() + options_.timeout : Clock::time_point::max();
  }

  bool next(StreamEvent& event, std::chrono::milliseconds wait) override {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, wait, [&] { return !events_.empty() || delivered_final_; })) return false;
    if (events_.empty()) return false;  // the final event was already read
    event = std::move(events_.front());
    events_.pop_front();
    if (event.finish != FinishReason::None) delivered_final_ = true;
    return true;
  }

  void cancel() override { cancelled_ = true; }

  void push(StreamEvent event) {
    {
      std::lock_guard lock(mutex_);
      if (finished_) return;
      finished_ = event.finish != FinishReason::None;
      events_.push_back(std::move(event));
    }
    ready_.notify_all();
  }
  void finish(FinishReason reason, std::string error = {}, int completion_tokens = 0) {
    StreamEvent event;
    event.finish = reason;
    event.error = std::move(error);
    event.prompt_tokens = static_cast<int>(prompt_.size());
    event.completion_tokens = completion_tokens;
    push(std::move(event));
  }

  bool cancelled() const { return cancelled_; }
  bool expired() const { return Clock::now() >= deadline_; }
  const std::vector<int32_t>& prompt() const { return prompt_; }
  const RequestOptions& options() const { return options_; }

 private:
  std::vector<int32_t> prompt_;
  RequestOptions options_;
  Clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StreamEvent> events_;
  bool finished_ = false;        // the final event was pushed
  bool delivered_final_ = false; // and read
};

struct SerialEngine::Runtime {
  ThreadPool pool;
  KvCache cache;
  ForwardPass pass;
  Runtime(std::shared_ptr<const ModelShard> shard, int n_ctx, int n_threads)
      : pool(n_threads), cache(shard->config(), shard->range(), n_ctx), pass(shard, cache, pool) {}
};

SerialEngine::SerialEngine(std::shared_ptr<const ModelShard> shard,
                           std::shared_ptr<const Tokenizer> tokenizer, SerialEngineOptions options)
    : shard_(std::move(shard)), tokenizer_(std::move(tokenizer)) {
  if (!shard_ || !tokenizer_) fail("SerialEngine: a model and a tokenizer are required");
  const ModelConfig& config = shard_->config();
  if (!shard_->is_first() || !shard_->is_last()) {
    fail("SerialEngine: the shard holds layers [{}, {}) of {}; it needs the whole model",
         shard_->range().begin, shard_->range().end, config.n_layers);
  }
  if (tokenizer_->n_vocab() > config.n_vocab) {
    fail("SerialEngine: the tokenizer has {} tokens but the model only {}", tokenizer_->n_vocab(),
         config.n_vocab);
  }
  if (options.n_ctx < 2) fail("SerialEngine: n_ctx = {} is too small (expected >= 2)", options.n_ctx);
  if (options.max_queue < 1) fail("SerialEngine: max_queue = {} (expected >= 1)", options.max_queue);
  n_ctx_ = config.n_ctx_train > 0 ? std::min(options.n_ctx, config.n_ctx_train) : options.n_ctx;
  max_queue_ = options.max_queue;
  prefill_chunk_ = std::max(1, options.prefill_chunk);
  model_id_ = options.model_id.empty() ? shard_->file().name() : options.model_id;
  runtime_ = std::make_unique<Runtime>(shard_, n_ctx_, options.n_threads);
  worker_ = std::thread([this] { worker_loop(); });
}

std::unique_ptr<SerialEngine> SerialEngine::load(const std::string& path, SerialEngineOptions options) {
  auto file = GgufFile::open(path);
  std::shared_ptr<const Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  const int n_layers = ModelConfig::from_gguf(*file).n_layers;
  auto shard = std::make_shared<ModelShard>(file, LayerRange{0, n_layers});
  if (options.model_id.empty()) options.model_id = std::filesystem::path(path).filename().string();
  return std::make_unique<SerialEngine>(std::move(shard), std::move(tokenizer), std::move(options));
}

SerialEngine::~SerialEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_running_ = true;
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (auto& request : queue_) request->finish(FinishReason::Error, "the engine is shutting down");
}

std::shared_ptr<RequestStream> SerialEngine::submit(std::vector<int32_t> prompt, RequestOptions options) {
  if (prompt.empty()) throw InvalidRequestError("the prompt is empty: at least one token is needed");
  if (int64_t(prompt.size()) >= n_ctx_) {
    throw InvalidRequestError(fmt::format(
        "the prompt has {} tokens, but the context holds {} (prompt and completion together)",
        prompt.size(), n_ctx_));
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= tokenizer_->n_vocab()) {
      throw InvalidRequestError(fmt::format("prompt token id {} is outside the vocabulary [0, {})", id,
                                            tokenizer_->n_vocab()));
    }
  }
  if (options.max_tokens < 0) {
    throw InvalidRequestError(fmt::format("max_tokens = {} (expected >= 0)", options.max_tokens));
  }
  if (options.top_logprobs < 0 || options.top_logprobs > 20) {
    throw InvalidRequestError(fmt::format("top_logprobs = {} (expected 0..20)", options.top_logprobs));
  }
  try {
    options.sampling.validate();
  } catch (const InvalidRequestError&) {
    throw;
  } catch (const Error& e) {
    throw InvalidRequestError(e.what());
  }

  auto request = std::make_shared<SerialRequest>(std::move(prompt), std::move(options));
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFullError("the engine is shutting down");
    drop_cancelled_locked();
    if (int(queue_.size()) >= max_queue_) {
      throw QueueFullError(fmt::format("{} requests are already waiting; try again later", queue_.size()));
    }
    queue_.push_back(request);
    ++requests_total_;
  }
  wake_.notify_one();
  return request;
}

void SerialEngine::drop_cancelled_locked() {
  auto cancelled = [](const std::shared_ptr<SerialRequest>& r) {
    if (!r->cancelled()) return false;
    r->finish(FinishReason::Cancelled);
    return true;
  };
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), cancelled), queue_.end());
}

EngineStats SerialEngine::stats() const {
  EngineStats s;
  s.requests_total = requests_total_;
  s.requests_running = requests_running_;
  {
    std::lock_guard lock(mutex_);
    s.requests_queued = static_cast<int64_t>(queue_.size());
  }
  s.prompt_tokens_total = prompt_tokens_total_;
  s.generated_tokens_total = generated_tokens_total_;
  s.kv_cache_usage = double(kv_positions_used_) / n_ctx_;
  return s;
}

void SerialEngine::worker_loop() {
  while (true) {
    std::shared_ptr<SerialRequest> request;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      request = std::move(queue_.front());
      queue_.pop_front();
      ++requests_running_;
    }
    try {
      run(*request);
    } catch (const std::exception& e) {
      // run() reports generation errors itself; this is the last line of defence.
      request->finish(FinishReason::Error, e.what());
    }
    kv_positions_used_ = 0;
    --requests_running_;
  }
}

void SerialEngine::run(SerialRequest& request) {
  if (request.cancelled()) return request.finish(FinishReason::Cancelled);
  if (request.expired()) return request.finish(FinishReason::Timeout);
  const RequestOptions& options = request.options();
  const Tokenizer& tok = *tokenizer_;
  const int prompt_tokens = static_cast<int>(request.prompt().size());
  prompt_tokens_total_ += prompt_tokens;

  bool stop_token_hit = false, cancelled = false, timed_out = false;
  int completion_tokens = 0;
  StreamingDetokenizer detok(tok);
  StopStringMatcher matcher(options.stop);

  GenerateOptions g;
  g.max_tokens = options.max_tokens;
  g.prefill_chunk = prefill_chunk_;
  g.sampling = options.sampling;
  g.stream = options.stream_id;
  g.logprobs = options.logprobs;
  g.top_logprobs = options.top_logprobs;
  g.is_stop_token = [&](int32_t token) {
    const bool stop = (!options.ignore_eos && tok.is_end_of_generation(token)) ||
                      std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
                          options.stop_tokens.end();
    stop_token_hit = stop_token_hit || stop;
    return stop;
  };
  g.should_stop = [&] {
    if (request.cancelled() || stop_running_) cancelled = true;
    else if (request.expired()) timed_out = true;
    return cancelled || timed_out;
  };
  g.on_sample = [&](int32_t token, const SampleInfo& info) {
    StreamEvent event;
    GeneratedToken generated;
    generated.id = token;
    generated.text = tok.token_piece(token);
    generated.logprob = info.logprob;
    generated.top = info.top;
    event.tokens.push_back(std::move(generated));
    event.text = matcher.push(detok.push(token));
    event.prompt_tokens = prompt_tokens;
    event.completion_tokens = ++completion_tokens;
    ++generated_tokens_total_;
    kv_positions_used_ = prompt_tokens + completion_tokens;
    request.push(std::move(event));
    return !matcher.stopped();
  };

  try {
    kv_positions_used_ = prompt_tokens;
    generate(runtime_->pass, runtime_->cache, 0, request.prompt(), g);
  } catch (const std::exception& e) {
    spdlog::error("generation failed: {}", e.what());
    runtime_->cache.remove(0);
    return request.finish(FinishReason::Error, e.what(), completion_tokens);
  }
  runtime_->cache.remove(0);

  StreamEvent last;
  if (!matcher.stopped()) {
    last.text = matcher.push(detok.flush());
    last.text += matcher.flush();
  }
  if (cancelled) last.finish = FinishReason::Cancelled;
  else if (timed_out) last.finish = FinishReason::Timeout;
  else if (matcher.stopped() || stop_token_hit) last.finish = FinishReason::Stop;
  else last.finish = FinishReason::Length;
  last.prompt_tokens = prompt_tokens;
  last.completion_tokens = completion_tokens;
  request.push(std::move(last));
}

}  // namespace px
