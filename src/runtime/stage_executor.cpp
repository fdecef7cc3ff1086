#include "runtime/stage_executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "runtime/state_commitment.h"

namespace px {

struct StageExecutor::Request {
  StageRequestSetup setup;
  int64_t seq = 0;                    // the request's id in the scheduler and the KV cache
  std::vector<int32_t> tokens;        // the history this stage knows
  std::optional<Sampler> sampler;     // last stage
  std::deque<StageChunk> pending;     // later stages: chunks still to run, in order
  std::chrono::steady_clock::time_point last_heard = std::chrono::steady_clock::now();
  bool queued = false;                // later stages: in arrivals_
  bool next_stage_has_setup = false;  // not last: the next stage has been given the setup
};

struct StageExecutor::Event {
  enum class Kind { Open, Append, Chunks, Release };
  Kind kind = Kind::Open;
  StageRequestSetup setup;
  std::vector<int32_t> tokens;
  std::vector<StageChunk> chunks;
  RequestId request = 0;
  int32_t position = 0;
  int32_t token = 0;
};

namespace {

constexpr auto kPollBeforeSleep = std::chrono::microseconds(2000);
constexpr auto kGatherWindow = std::chrono::microseconds(300);
constexpr int kMinPrefillPiece = 32;  // smaller pieces batch too poorly to be worth a hop

KvCacheConfig cache_config(const StageConfig& c) {
  KvCacheConfig k;
  k.n_ctx = c.context_size;
  k.block_size = c.kv_block_size;
  k.n_blocks = int((c.kv_cache_tokens + c.kv_block_size - 1) / c.kv_block_size);
  k.prefix_caching = c.prefix_caching;
  if (k.n_blocks <= c.scheduler.max_running) {
    fail("a KV cache of {} tokens is too small for {} running sequences", c.kv_cache_tokens, c.scheduler.max_running);
  }
  return k;
}

// The scheduler counts tokens; each running sequence may leave up to one block partly empty,
// so it is told the capacity without one block per running sequence: then the blocks it
// admits always exist.
SchedulerConfig scheduler_config(const StageConfig& c) {
  SchedulerConfig s = c.scheduler;
  const int n_blocks = cache_config(c).n_blocks;
  s.kv_capacity_tokens = int64_t(n_blocks - s.max_running) * c.kv_block_size;
  return s;
}

}  // namespace

StageExecutor::StageExecutor(std::shared_ptr<const ModelShard> shard, ThreadPool& pool, StageConfig config,
                             StageSink& sink)
    : shard_(std::move(shard)),
      config_(config),
      sink_(sink),
      cache_(shard_->config(), shard_->range(), cache_config(config)),
      pass_(shard_, cache_, pool),
      scheduler_(scheduler_config(config)) {
  pass_.set_skipped_layer(faulty_skipped_layer(config_.fault, shard_->range()));
  publish_stats();
  thread_ = std::thread([this] { loop(); });
}

StageExecutor::~StageExecutor() { stop(); }

void StageExecutor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StageExecutor::post(Event event) {
  std::lock_guard lock(mutex_);
  if (event.kind == Event::Kind::Open) ++stats_.waiting;  // counted until the executor publishes its own figure
  inbox_.push_back(std::move(event));
  pending_events_.store(true, std::memory_order_release);
  wake_.notify_one();
}

void StageExecutor::open(StageRequestSetup setup, std::vector<int32_t> prompt) {
  Event e;
  e.kind = Event::Kind::Open;
  e.request = setup.id;
  e.setup = std::move(setup);
  e.tokens = std::move(prompt);
  post(std::move(e));
}

void StageExecutor::append(RequestId request, int32_t position, int32_t token) {
  Event e;
  e.kind = Event::Kind::Append;
  e.request = request;
  e.position = position;
  e.token = token;
  post(std::move(e));
}

void StageExecutor::receive(std::vector<StageChunk> chunks) {
  Event e;
  e.kind = Event::Kind::Chunks;
  e.chunks = std::move(chunks);
  post(std::move(e));
}

void StageExecutor::release(RequestId request) {
  Event e;
  e.kind = Event::Kind::Release;
  e.request = request;
  post(std::move(e));
}

StageStats StageExecutor::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void StageExecutor::loop() {
  bool stalled = false;  // the last step found nothing it could run: wait for news
  for (;;) {
    std::vector<Event> events;
    if (!requests_.empty() && (stalled || !has_work())) {
      // Requests are out on the ring; their next message comes within a round trip. Poll
      // (yielding the core to anyone runnable) before sleeping: waking a sleeping thread costs
      // milliseconds on virtual machines (measured: a one-stage swarm decoded 59 tok/s
      // sleeping at once, 139 polling first).
      const auto until = std::chrono::steady_clock::now() + kPollBeforeSleep;
      while (!pending_events_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
    }
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || (!stalled && has_work()); });
      if (stopping_) break;
      events.swap(inbox_);
      pending_events_.store(false, std::memory_order_relaxed);
    }
    try {
      for (Event& e : events) apply(e);
      drop_idle();
      if (!events.empty()) stalled = false;
      gather_returning_tokens();
      if (has_work()) {
        const int64_t steps_before = stats_.steps;
        step();
        stalled = stats_.steps == steps_before && plan_.preempted.empty();
      }
    } catch (const std::exception& e) {
      // A failed step leaves no request in a known state: fail them all rather than hang.
      spdlog::error("stage [{}, {}) step failed: {}", shard_->range().begin, shard_->range().end, e.what());
      std::vector<RequestId> ids;
      for (auto& [id, r] : requests_) ids.push_back(id);
      for (RequestId id : ids) fail_request(id, e.what());
    }
    publish_stats();
  }
}

bool StageExecutor::has_work() const {
  return shard_->is_first() ? scheduler_.has_uncomputed_tokens() : !arrivals_.empty();
}

StageExecutor::Request* StageExecutor::find(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return nullptr;
  it->second->last_heard = std::chrono::steady_clock::now();
  return it->second.get();
}

void StageExecutor::drop_idle() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_idle_check_) return;
  next_idle_check_ = now + std::chrono::seconds(1);
  std::vector<RequestId> idle;
  for (const auto& [id, r] : requests_) {
    if (now - r->last_heard > config_.idle_timeout) idle.push_back(id);
  }
  for (RequestId id : idle) fail_request(id, "no message for this request in a long time; dropped");
}

void StageExecutor::apply(Event& e) {
  const ModelConfig& model = shard_->config();
  auto valid_token = [&](int32_t t) { return t >= 0 && t < model.n_vocab; };
  switch (e.kind) {
    case Event::Kind::Open: {
      if (!shard_->is_first()) return fail_request(e.request, "this stage does not hold layer 0");
      if (find(e.request)) return fail_request(e.request, fmt::format("request {} is already open", e.request));
      if (e.tokens.empty() || int64_t(e.tokens.size()) >= config_.context_size) {
        return fail_request(e.request, fmt::format("a prompt of {} tokens does not fit a context of {}",
                                                   e.tokens.size(), config_.context_size));
      }
      if (!std::all_of(e.tokens.begin(), e.tokens.end(), valid_token)) {
        return fail_request(e.request, "a prompt token is outside the vocabulary");
      }
      auto r = std::make_unique<Request>();
      r->setup = std::move(e.setup);
      r->seq = next_seq_++;
      r->tokens = std::move(e.tokens);
      try {
        if (shard_->is_last()) r->sampler.emplace(r->setup.sampling);
      } catch (const Error& error) {
        return fail_request(e.request, error.what());
      }
      scheduler_.add(r->seq, int(r->tokens.size()));
      by_seq_[r->seq] = e.request;
      requests_.emplace(e.request, std::move(r));
      return;
    }
    case Event::Kind::Append: {
      Request* r = find(e.request);
      if (!r) return;  // finished or failed meanwhile: its release is on the way
      if (e.position != int32_t(r->tokens.size()) || !valid_token(e.token)) {
        return fail_request(e.request, fmt::format("append of token {} at position {} to a request of {} tokens",
                                                   e.token, e.position, r->tokens.size()));
      }
      if (int64_t(r->tokens.size()) + 1 > config_.context_size) {
        return fail_request(e.request, "the request outgrew the context");
      }
      r->tokens.push_back(e.token);
      scheduler_.grow(r->seq);
      return;
    }
    case Event::Kind::Chunks: {
      for (StageChunk& chunk : e.chunks) {
        const RequestId id = chunk.request;
        if (shard_->is_first()) {
          // (The stage host refuses routes that would bring chunks here; each request is failed
          // on its own, never the rest of the message dropped with it.)
          fail_request(id, "the first stage takes no chunks");
          continue;
        }
        Request* r = find(id);
        if (!r) {
          if (!chunk.setup) {
            spdlog::warn("stage [{}, {}): chunk for unknown request {} dropped", shard_->range().begin,
                         shard_->range().end, id);
            continue;
          }
          auto fresh = std::make_unique<Request>();
          fresh->setup = *chunk.setup;
          fresh->seq = next_seq_++;
          try {
            if (shard_->is_last()) fresh->sampler.emplace(fresh->setup.sampling);
          } catch (const Error& error) {
            fail_request(id, error.what());
            continue;
          }
          by_seq_[fresh->seq] = id;
          r = requests_.emplace(id, std::move(fresh)).first->second.get();
        }
        r->pending.push_back(std::move(chunk));
        if (!r->queued) {
          r->queued = true;
          arrivals_.push_back(id);
        }
      }
      return;
    }
    case Event::Kind::Release: {
      if (find(e.request)) {
        drop(e.request, /*notify_downstream=*/true);
      } else {
        sink_.released(e.request, /*final=*/true);  // pass it on: later stages may still hold the request
      }
      return;
    }
  }
}

void StageExecutor::step() {
  planned_.clear();
  batch_.clear();
  if (shard_->is_first()) {
    plan_first_stage();
  } else {
    plan_.chunks.clear();
    plan_.preempted.clear();
    plan_later_stage();
  }
  publish_stats();  // before any result of this step reaches a reader
  if (planned_.empty()) return;
  run_batch();
  if (shard_->is_first()) scheduler_.commit(plan_);
}

void StageExecutor::plan_first_stage() {
  // Admission allocates the request's KV blocks, reusing cached blocks of a shared prefix.
  plan_ = scheduler_.schedule([&](int64_t seq) {
    const Request& r = *requests_.at(by_seq_.at(seq));
    cache_.remove(int(seq));  // a preempted request starts over
    if (!cache_.blocks().can_allocate(r.tokens)) return -1;
    const int cached = cache_.blocks().allocate(seq, r.tokens);
    return r.setup.reuse_prefix ? cached : 0;
  });
  split_decodes_into_microbatches();
  split_prefill_across_stages();
  for (int64_t seq : plan_.preempted) {
    cache_.remove(int(seq));
    Request& r = *requests_.at(by_seq_.at(seq));
    // Later stages drop their copy too; the recomputation brings them the setup again.
    if (!shard_->is_last() && r.next_stage_has_setup) {
      r.next_stage_has_setup = false;
      sink_.released(r.setup.id, /*final=*/false);
    }
    ++stats_.preemptions;
  }
  tokens_return_by_network_ = false;
  for (const ScheduledChunk& c : plan_.chunks) {
    tokens_return_by_network_ |= !requests_.at(by_seq_.at(c.request))->setup.head.empty();
    const RequestId id = by_seq_.at(c.request);
    Request& r = *find(id);  // (refreshes its idle clock)
    batch_.add_tokens(int(c.request), std::span(r.tokens).subspan(c.begin, c.count), c.begin);
    batch_.want_logits.back() = c.completes;  // only a chunk reaching the last token needs logits
    planned_.push_back({id, c.begin, c.count, c.completes});
  }
}

void StageExecutor::gather_returning_tokens() {
  // The tokens of one step come back from the head together but as separate messages; a step
  // started on the first one would run the batch piecemeal. Give the rest a moment to arrive.
  if (!shard_->is_first() || !tokens_return_by_network_ || scheduler_.decoding() <= 1) return;
  // Wait for every decoding request, or for one micro-batch's worth on a longer pipeline.
  const size_t want = std::min(scheduler_.decoding(), std::max<size_t>(1, microbatch_cap_));
  const auto until = std::chrono::steady_clock::now() + kGatherWindow;
  while (scheduler_.ready_decodes() < want && std::chrono::steady_clock::now() < until) {
    if (!pending_events_.load(std::memory_order_acquire)) {
      std::this_thread::yield();
      continue;
    }
    std::vector<Event> events;
    {
      std::lock_guard lock(mutex_);
      events.swap(inbox_);
      pending_events_.store(false, std::memory_order_relaxed);
    }
    for (Event& e : events) apply(e);
  }
}

void StageExecutor::split_decodes_into_microbatches() {
  // Requests on a pipeline of S stages: if stage 0 sent every ready decode at once, the stages
  // would take turns, each idle while the others work. Sending about 1/S of them per step keeps
  // S micro-batches in flight, one on each stage. (Tokens not sent stay ready for the next
  // step; prefill chunks are never held back.)
  size_t stages = 1, decodes = 0;
  for (const ScheduledChunk& c : plan_.chunks) {
    const Request& r = *requests_.at(by_seq_.at(c.request));
    stages = std::max(stages, r.setup.hops.size());
    decodes += c.count == 1 && c.completes && c.begin > 0;
  }
  const size_t running = scheduler_.running();
  const size_t cap = std::max<size_t>(1, (running + stages - 1) / stages);
  microbatch_cap_ = cap;
  if (stages <= 1 || decodes <= 1) return;
  if (decodes <= cap) return;
  size_t kept = 0;
  std::erase_if(plan_.chunks, [&](const ScheduledChunk& c) {
    const bool decode = c.count == 1 && c.completes && c.begin > 0;
    return decode && ++kept > cap;
  });
}

void StageExecutor::split_prefill_across_stages() {
  // A prompt sent whole would pass the stages one after another; in S pieces, stage 0 computes
  // the second piece while stage 1 computes the first, and the first token comes sooner.
  for (ScheduledChunk& c : plan_.chunks) {
    if (c.count <= kMinPrefillPiece) continue;
    const Request& r = *requests_.at(by_seq_.at(c.request));
    const int stages = int(r.setup.hops.size());
    if (stages <= 1) continue;
    const int piece = std::max(kMinPrefillPiece, (int(r.tokens.size()) + stages - 1) / stages);
    if (c.count > piece) {
      c.count = piece;
      c.completes = false;
    }
  }
}

void StageExecutor::plan_later_stage() {
  const ModelConfig& model = shard_->config();
  int budget = config_.scheduler.max_batch_tokens;
  std::vector<RequestId> again;  // requests with more chunks, back in line after this step
  while (!arrivals_.empty() && (planned_.empty() || budget > 0)) {
    const RequestId id = arrivals_.front();
    Request* r = find(id);
    if (!r || r->pending.empty()) {
      arrivals_.pop_front();
      if (r) r->queued = false;
      continue;
    }
    const StageChunk& chunk = r->pending.front();
    const int count = int(chunk.tokens.size());
    if (!planned_.empty() && count > budget) break;
    arrivals_.pop_front();
    r->queued = false;

    // Everything a peer sent is checked before it can touch the KV cache.
    std::string problem;
    const int end = chunk.begin + count;
    if (count == 0 || chunk.hidden.size() != size_t(count) * model.n_embd) {
      problem = fmt::format("chunk of {} tokens with {} hidden values (width {})", count, chunk.hidden.size(), model.n_embd);
    } else if (end > config_.context_size) {
      problem = fmt::format("chunk reaches position {} but the context holds {}", end, config_.context_size);
    } else if (!std::all_of(chunk.tokens.begin(), chunk.tokens.end(), [&](int32_t t) { return t >= 0 && t < model.n_vocab; })) {
      problem = "a chunk token is outside the vocabulary";
    }
    const bool known = cache_.blocks().has_sequence(r->seq);
    if (problem.empty() && !known) {
      // The request's first chunk here: the history plus the chunk, with whatever prefix the
      // cache still holds from an earlier try.
      if (chunk.history.size() != size_t(chunk.begin)) {
        problem = fmt::format("first chunk at position {} came with {} history tokens", chunk.begin, chunk.history.size());
      } else {
        std::vector<int32_t> all = chunk.history;
        all.insert(all.end(), chunk.tokens.begin(), chunk.tokens.end());
        if (cache_.blocks().cached_prefix_tokens(all) < chunk.begin) {
          problem = fmt::format("this stage lost the KV of positions before {}; resend from position 0", chunk.begin);
        } else if (!cache_.blocks().can_allocate(all)) {
          problem = "the KV cache of this stage is full";
        } else {
          cache_.blocks().allocate(r->seq, all);
          r->tokens = std::move(all);
        }
      }
    } else if (problem.empty()) {
      const std::vector<int32_t>& held = cache_.blocks().tokens(r->seq);
      const int n_held = int(held.size());
      if (chunk.begin > cache_.length(int(r->seq))) {
        problem = fmt::format("chunk starts at position {} but this stage has computed {}", chunk.begin,
                              cache_.length(int(r->seq)));
      } else if (!std::equal(chunk.tokens.begin(), chunk.tokens.begin() + std::max(0, std::min(end, n_held) - chunk.begin),
                             held.begin() + chunk.begin)) {
        problem = "chunk tokens differ from the ones this stage holds";
      } else if (end > n_held && !cache_.blocks().can_append(r->seq, end - n_held)) {
        problem = "the KV cache of this stage is full";
      } else {
        r->tokens.resize(chunk.begin);
        r->tokens.insert(r->tokens.end(), chunk.tokens.begin(), chunk.tokens.end());
      }
    }
    if (!problem.empty()) {
      fail_request(id, problem);
      continue;
    }
    batch_.add_tokens(int(r->seq), chunk.tokens, chunk.begin);
    batch_.want_logits.back() = chunk.sample;
    batch_.hidden.insert(batch_.hidden.end(), chunk.hidden.begin(), chunk.hidden.end());
    planned_.push_back({id, chunk.begin, count, chunk.sample});
    budget -= count;
    r->pending.pop_front();
    if (!r->pending.empty()) again.push_back(id);
  }
  for (RequestId id : again) {
    Request* r = find(id);
    if (r && !r->queued) {
      r->queued = true;
      arrivals_.push_back(id);
    }
  }
}

void StageExecutor::run_batch() {
  const auto start = std::chrono::steady_clock::now();
  pass_.run(batch_, result_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
    stats_.busy_seconds += seconds;
    stats_.recent_step_seconds =
        stats_.recent_step_seconds == 0 ? seconds : 0.9 * stats_.recent_step_seconds + 0.1 * seconds;
  }
  if (config_.fault.kind == StageFaultKind::Corrupt && !shard_->is_last()) {
    corrupt_rows(config_.fault, result_.values, result_.width, batch_.positions, batch_.seq_ids);
  }
  if (shard_->is_last()) {
    std::vector<SampledToken> out;
    int row = 0;
    for (const Planned& p : planned_) {
      if (!p.sample) continue;
      Request& r = *requests_.at(p.request);
      const int position = p.begin + p.count;
      const int n_top = r.setup.logprobs ? r.setup.top_logprobs : 0;
      SampledToken t;
      t.request = p.request;
      t.position = position;
      t.token = r.sampler->sample(result_.row(row++), std::span(r.tokens).first(position), uint64_t(position),
                                  r.setup.stream_id, r.setup.logprobs ? &t.info : nullptr, n_top);
      out.push_back(std::move(t));
    }
    if (!out.empty()) sink_.sampled(std::move(out));
    return;
  }
  const int width = shard_->config().n_embd;
  std::vector<StageChunk> out;
  int row = 0;
  for (const Planned& p : planned_) {
    Request& r = *requests_.at(p.request);
    StageChunk c;
    c.request = p.request;
    c.begin = p.begin;
    c.tokens.assign(r.tokens.begin() + p.begin, r.tokens.begin() + p.begin + p.count);
    c.hidden.assign(result_.values.begin() + size_t(row) * width, result_.values.begin() + size_t(row + p.count) * width);
    c.sample = p.sample;
    if (config_.commit_top_k > 0 && config_.fault.kind != StageFaultKind::NoCommit) {
      c.commitment = serialize_commitment(commit_states(c.hidden, width, config_.commit_top_k));
    }
    if (!r.next_stage_has_setup) {
      c.setup = r.setup;
      c.history.assign(r.tokens.begin(), r.tokens.begin() + p.begin);
      r.next_stage_has_setup = true;
    }
    row += p.count;
    out.push_back(std::move(c));
  }
  sink_.forward(std::move(out));
}

void StageExecutor::fail_request(RequestId id, const std::string& error) {
  Request* r = find(id);
  SampledToken t;
  t.request = id;
  t.position = r ? int32_t(r->tokens.size()) : 0;
  t.error = fmt::format("stage [{}, {}): {}", shard_->range().begin, shard_->range().end, error);
  sink_.sampled({std::move(t)});
  if (r) drop(id, /*notify_downstream=*/true);
}

void StageExecutor::drop(RequestId id, bool notify_downstream) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  const int64_t seq = it->second->seq;
  scheduler_.remove(seq);
  cache_.remove(int(seq));
  by_seq_.erase(seq);
  requests_.erase(it);
  std::erase(arrivals_, id);
  if (notify_downstream) sink_.released(id, /*final=*/true);
}

void StageExecutor::publish_stats() {
  const BlockManager& blocks = cache_.blocks();
  std::lock_guard lock(mutex_);
  stats_.running = shard_->is_first() ? int64_t(scheduler_.running()) : int64_t(requests_.size());
  stats_.waiting = int64_t(scheduler_.waiting());
  for (const Event& e : inbox_) stats_.waiting += e.kind == Event::Kind::Open;
  stats_.kv_usage = blocks.usage();
  stats_.free_kv_tokens = int64_t(blocks.free_blocks()) * blocks.block_size();
  stats_.prefix_hit_tokens = blocks.stats().prefix_hit_tokens;
  stats_.prefix_query_tokens = blocks.stats().prefix_query_tokens;
}

}  // namespace px
