#include "runtime/batch_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/thread_pool.h"
#include "runtime/loaded_model.h"
#include "runtime/stop_strings.h"

namespace px {

struct BatchEngine::Request {
  int64_t id = 0;
  std::vector<int32_t> tokens;  // prompt, then generated
  int n_prompt = 0;
  int max_tokens = 0;
  RequestOptions options;
  std::shared_ptr<RequestChannel> channel;
  Sampler sampler;
  StreamingDetokenizer detokenizer;
  StopStringMatcher stop_strings;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool finished = false;

  Request(const Tokenizer& tokenizer, RequestOptions opts)
      : options(std::move(opts)),
        sampler(options.sampling),
        detokenizer(tokenizer),
        stop_strings(options.stop) {}
  int generated() const { return int(tokens.size()) - n_prompt; }
};

namespace {

KvCacheConfig cache_config(const BatchEngineConfig& c) {
  KvCacheConfig k;
  k.n_ctx = c.context_size;
  k.block_size = c.kv_block_size;
  k.n_blocks = int((c.kv_cache_tokens + c.kv_block_size - 1) / c.kv_block_size);
  k.prefix_caching = c.prefix_caching;
  if (k.n_blocks <= c.scheduler.max_running) {
    fail("a KV cache of {} tokens is too small for {} running sequences", c.kv_cache_tokens,
         c.scheduler.max_running);
  }
  return k;
}

// The scheduler counts tokens; each running sequence may leave up to one block partly empty,
// so it is told the capacity without one block per running sequence: then the blocks it
// admits always exist.
SchedulerConfig scheduler_config(const BatchEngineConfig& c) {
  SchedulerConfig s = c.scheduler;
  const int n_blocks = cache_config(c).n_blocks;
  s.kv_capacity_tokens = int64_t(n_blocks - s.max_running) * c.kv_block_size;
  return s;
}

}  // namespace

BatchEngine::BatchEngine(std::shared_ptr<const ModelShard> shard, std::shared_ptr<const Tokenizer> tokenizer,
                         ThreadPool& pool, BatchEngineConfig config, std::string model_id)
    : shard_(std::move(shard)),
      tokenizer_(std::move(tokenizer)),
      config_(config),
      model_id_(std::move(model_id)),
      cache_(shard_->config(), shard_->range(), cache_config(config)),
      pass_(shard_, cache_, pool),
      scheduler_(scheduler_config(config)) {
  if (!shard_->is_first() || !shard_->is_last()) fail("the batch engine needs the whole model on this node");
  thread_ = std::thread([this] { loop(); });
}

std::unique_ptr<BatchEngine> BatchEngine::load(const std::string& path, BatchEngineConfig config,
                                               std::string model_id) {
  LoadedModel loaded = LoadedModel::open(path);
  const ModelConfig& model = loaded.shard->config();
  config.context_size = std::min(config.context_size, model.n_ctx_train);
  if (config.kv_cache_mb > 0) {
    const int64_t bytes_per_token = int64_t(2) * model.n_layers * model.kv_dim() * int64_t(sizeof(float));
    config.kv_cache_tokens = (config.kv_cache_mb << 20) / bytes_per_token;
  }
  if (model_id.empty()) model_id = std::filesystem::path(path).filename().string();
  auto pool = std::make_unique<ThreadPool>(config.n_threads);
  auto engine = std::make_unique<BatchEngine>(std::move(loaded.shard), std::move(loaded.tokenizer), *pool, config,
                                              std::move(model_id));
  engine->owned_pool_ = std::move(pool);
  return engine;
}

BatchEngine::~BatchEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<RequestStream> BatchEngine::submit(std::vector<int32_t> prompt, RequestOptions options) {
  if (prompt.empty()) throw InvalidRequestError("the prompt is empty");
  if (int64_t(prompt.size()) >= config_.context_size) {
    throw InvalidRequestError(fmt::format("the prompt has {} tokens but the context holds {}",
                                          prompt.size(), config_.context_size));
  }
  for (int32_t t : prompt) {
    if (t < 0 || t >= shard_->config().n_vocab) throw InvalidRequestError(fmt::format("token id {} is outside the vocabulary", t));
  }
  if (options.max_tokens < 0) throw InvalidRequestError("max_tokens must be >= 0");
  if (options.top_logprobs < 0 || options.top_logprobs > 20) throw InvalidRequestError("top_logprobs must be in 0..20");
  try {
    options.sampling.validate();
  } catch (const Error& e) {
    throw InvalidRequestError(e.what());
  }
  auto request = std::make_unique<Request>(*tokenizer_, std::move(options));
  request->n_prompt = int(prompt.size());
  request->max_tokens = std::min<int64_t>(request->options.max_tokens, config_.context_size - int64_t(prompt.size()));
  request->tokens = std::move(prompt);
  request->channel = std::make_shared<RequestChannel>();
  if (request->options.timeout.count() > 0) {
    request->deadline = std::chrono::steady_clock::now() + request->options.timeout;
  }
  auto channel = request->channel;
  {
    std::lock_guard lock(mutex_);
    if (queued_.load() + int64_t(inbox_.size()) >= config_.max_queue) {
      throw QueueFullError(fmt::format("{} requests are waiting; try again later", config_.max_queue));
    }
    request->id = next_id_++;
    inbox_.push_back(std::move(request));
  }
  wake_.notify_one();
  return channel;
}

EngineStats BatchEngine::stats() const {
  EngineStats s;
  s.requests_total = requests_total_.load();
  s.requests_running = running_.load();
  {
    std::lock_guard lock(mutex_);
    s.requests_queued = queued_.load() + int64_t(inbox_.size());
  }
  s.prompt_tokens_total = prompt_tokens_total_.load();
  s.generated_tokens_total = generated_tokens_total_.load();
  s.kv_cache_usage = kv_usage_.load();
  s.preemptions_total = preemptions_.load();
  s.prefix_cache_hit_tokens = prefix_hit_tokens_.load();
  s.prefix_cache_query_tokens = prefix_query_tokens_.load();
  return s;
}

void BatchEngine::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !scheduler_.idle(); });
      if (stopping_) break;
    }
    try {
      admit_submissions();
      drop_finished_or_cancelled();
      if (!scheduler_.idle()) step();
    } catch (const std::exception& e) {
      // A failed step leaves no request in a known state: fail them all rather than hang.
      spdlog::error("engine step failed: {}", e.what());
      for (auto& [id, r] : requests_) finish(*r, FinishReason::Error, e.what());
      drop_finished_or_cancelled();
    }
  }
  for (auto& [id, r] : requests_) finish(*r, FinishReason::Cancelled);
  std::lock_guard lock(mutex_);
  for (auto& r : inbox_) finish(*r, FinishReason::Cancelled);
}

void BatchEngine::admit_submissions() {
  std::vector<std::unique_ptr<Request>> arrived;
  {
    std::lock_guard lock(mutex_);
    arrived.swap(inbox_);
  }
  for (auto& r : arrived) {
    requests_total_.fetch_add(1);
    prompt_tokens_total_.fetch_add(r->n_prompt);
    if (r->max_tokens == 0) {
      finish(*r, FinishReason::Length);
      continue;
    }
    scheduler_.add(r->id, int(r->tokens.size()));
    requests_.emplace(r->id, std::move(r));
  }
}

void BatchEngine::drop_finished_or_cancelled() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = requests_.begin(); it != requests_.end();) {
    Request& r = *it->second;
    if (!r.finished && r.channel->cancelled()) finish(r, FinishReason::Cancelled);
    if (!r.finished && now >= r.deadline) finish(r, FinishReason::Timeout);
    if (r.finished) {
      scheduler_.remove(r.id);
      cache_.remove(int(r.id));
      it = requests_.erase(it);
    } else {
      ++it;
    }
  }
  publish_counts();
}

void BatchEngine::publish_counts() {
  queued_.store(int64_t(scheduler_.waiting()));
  running_.store(int64_t(scheduler_.running()));
  kv_usage_.store(cache_.blocks().usage());
  prefix_hit_tokens_.store(cache_.blocks().stats().prefix_hit_tokens);
  prefix_query_tokens_.store(cache_.blocks().stats().prefix_query_tokens);
}

void BatchEngine::step() {
  // Admission allocates the request's KV blocks, reusing cached blocks of a shared prefix.
  const SchedulePlan plan = scheduler_.schedule([&](int64_t id) {
    const Request& r = *requests_.at(id);
    cache_.remove(int(id));  // a preempted request starts over
    if (!cache_.blocks().can_allocate(r.tokens)) return -1;
    return cache_.blocks().allocate(id, r.tokens);
  });
  for (int64_t id : plan.preempted) cache_.remove(int(id));
  preemptions_.fetch_add(int64_t(plan.preempted.size()));
  publish_counts();  // before any event of this step reaches a reader
  if (plan.chunks.empty()) return;
  batch_.clear();
  for (const ScheduledChunk& c : plan.chunks) {
    const Request& r = *requests_.at(c.request);
    batch_.add_tokens(int(c.request), std::span(r.tokens).subspan(c.begin, c.count), c.begin);
    // Only a chunk that reaches the request's last token needs logits.
    batch_.want_logits.back() = c.completes;
  }
  pass_.run(batch_, result_);
  scheduler_.commit(plan);

  // Output rows follow the batch order, which follows the plan's chunk order.
  int row = 0;
  SampleInfo info;
  for (const ScheduledChunk& c : plan.chunks) {
    if (!c.completes) continue;
    Request& r = *requests_.at(c.request);
    const int n_top = r.options.logprobs ? r.options.top_logprobs : 0;
    const int32_t token = r.sampler.sample(result_.row(row++), r.tokens, r.tokens.size(),
                                           r.options.stream_id, r.options.logprobs ? &info : nullptr, n_top);
    on_sampled(r, token, info);
  }
  drop_finished_or_cancelled();
}

void BatchEngine::on_sampled(Request& r, int32_t token, const SampleInfo& info) {
  const bool stop_token =
      (!r.options.ignore_eos && tokenizer_->is_end_of_generation(token)) ||
      std::find(r.options.stop_tokens.begin(), r.options.stop_tokens.end(), token) != r.options.stop_tokens.end();
  if (stop_token) {
    finish(r, FinishReason::Stop);
    return;
  }
  r.tokens.push_back(token);
  generated_tokens_total_.fetch_add(1);
  StreamEvent event;
  GeneratedToken generated{token, tokenizer_->token_piece(token), 0, {}};
  if (r.options.logprobs) {
    generated.logprob = info.logprob;
    generated.top = info.top;
  }
  event.tokens.push_back(std::move(generated));
  event.text = r.stop_strings.push(r.detokenizer.push(token));
  event.prompt_tokens = r.n_prompt;
  event.completion_tokens = r.generated();
  if (r.stop_strings.stopped()) {
    event.finish = FinishReason::Stop;
    r.finished = true;
  } else if (r.generated() >= r.max_tokens) {
    event.text += r.stop_strings.push(r.detokenizer.flush());
    event.text += r.stop_strings.flush();
    event.finish = r.stop_strings.stopped() ? FinishReason::Stop : FinishReason::Length;
    r.finished = true;
  } else {
    scheduler_.grow(r.id);
  }
  r.channel->push(std::move(event));
}

void BatchEngine::finish(Request& r, FinishReason reason, std::string error) {
  if (r.finished) return;
  r.finished = true;
  StreamEvent event;
  if (!r.stop_strings.stopped()) {
    event.text = r.stop_strings.push(r.detokenizer.flush());
    event.text += r.stop_strings.flush();
  }
  event.finish = reason;
  event.error = std::move(error);
  event.prompt_tokens = r.n_prompt;
  event.completion_tokens = r.generated();
  r.channel->push(std::move(event));
}

}  // namespace px
