#include "runtime/request_head.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "runtime/request_channel.h"
#include "runtime/stop_strings.h"

namespace px {

// However routes keep going stale, a request is opened at most this often.
constexpr int kMaxOpens = 100;

struct RequestHead::Request {
  RequestId id = 0;                   // of the current attempt
  int attempts = 1;                   // opens that count against max_attempts
  int opens = 1;
  // The progress watchdog: when the request last got a token (or was opened), and how many
  // times it has fired for it (each doubles the wait).
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  int stalls = 0;
  bool computing_history = true;      // opened, no token back yet: the route computes it all
  std::vector<int32_t> tokens;        // prompt, then generated
  int n_prompt = 0;
  int max_tokens = 0;
  RequestOptions options;
  std::shared_ptr<RequestChannel> channel;
  StreamingDetokenizer detokenizer;
  StopStringMatcher stop_strings;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool finished = false;

  Request(const Tokenizer& tokenizer, RequestOptions opts)
      : options(std::move(opts)), detokenizer(tokenizer), stop_strings(options.stop) {}
  int generated() const { return int(tokens.size()) - n_prompt; }
  StageRequestSetup setup(bool reuse_prefix) const {
    StageRequestSetup s;
    s.id = id;
    s.sampling = options.sampling;
    s.logprobs = options.logprobs;
    s.top_logprobs = options.top_logprobs;
    s.stream_id = options.stream_id;
    s.reuse_prefix = reuse_prefix;
    return s;
  }
};

// What to tell the pipeline once the head's lock is released (a pipeline may answer from
// the calling thread).
struct RequestHead::Action {
  enum class Kind { Open, Append, Release, Stalled };
  Kind kind = Kind::Release;
  RequestId request = 0;
  StageRequestSetup setup;
  std::vector<int32_t> tokens;
  int32_t position = 0;
  int32_t token = 0;

  static Action open(StageRequestSetup setup, std::vector<int32_t> tokens) {
    Action a;
    a.kind = Kind::Open;
    a.request = setup.id;
    a.setup = std::move(setup);
    a.tokens = std::move(tokens);
    return a;
  }
  static Action append(RequestId request, int32_t position, int32_t token) {
    Action a;
    a.kind = Kind::Append;
    a.request = request;
    a.position = position;
    a.token = token;
    return a;
  }
  // `history`: the request is over and these were its tokens (PipelineEntry::completed).
  static Action release(RequestId request, std::vector<int32_t> history = {}) {
    Action a;
    a.request = request;
    a.tokens = std::move(history);
    return a;
  }
  static Action stalled(RequestId request) {
    Action a;
    a.kind = Kind::Stalled;
    a.request = request;
    return a;
  }
};

RequestHead::RequestHead(std::shared_ptr<const Tokenizer> tokenizer, HeadConfig config, std::string model_id)
    : tokenizer_(std::move(tokenizer)), config_(config), model_id_(std::move(model_id)), next_id_(config.first_id) {
  reaper_ = std::thread([this] { reap(); });
}

RequestHead::~RequestHead() { shutdown(); }

void RequestHead::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    stopping_ = true;
  }
  reaper_wake_.notify_all();
  reaper_.join();
  // The pipeline may be going away: end the streams without telling it.
  std::vector<Action> ignored;
  std::lock_guard lock(mutex_);
  closed_ = true;
  std::vector<std::shared_ptr<Request>> all;
  for (auto& [id, r] : requests_) all.push_back(r);
  for (auto& r : all) finish(*r, FinishReason::Cancelled, {}, ignored);
}

std::shared_ptr<RequestStream> RequestHead::submit(std::vector<int32_t> prompt, RequestOptions options) {
  if (!entry_) fail("the request head is not connected to a pipeline");
  if (prompt.empty()) throw InvalidRequestError("the prompt is empty");
  if (int64_t(prompt.size()) >= config_.context_size) {
    throw InvalidRequestError(
        fmt::format("the prompt has {} tokens but the context holds {}", prompt.size(), config_.context_size));
  }
  for (int32_t t : prompt) {
    if (t < 0 || t >= config_.n_vocab) throw InvalidRequestError(fmt::format("token id {} is outside the vocabulary", t));
  }
  if (options.max_tokens < 0) throw InvalidRequestError("max_tokens must be >= 0");
  if (options.top_logprobs < 0 || options.top_logprobs > 20) throw InvalidRequestError("top_logprobs must be in 0..20");
  try {
    options.sampling.validate();
  } catch (const Error& e) {
    throw InvalidRequestError(e.what());
  }
  auto r = std::make_shared<Request>(*tokenizer_, std::move(options));
  r->n_prompt = int(prompt.size());
  r->max_tokens = std::min<int64_t>(r->options.max_tokens, config_.context_size - int64_t(prompt.size()));
  r->tokens = std::move(prompt);
  r->channel = std::make_shared<RequestChannel>();
  if (r->options.timeout.count() > 0) r->deadline = std::chrono::steady_clock::now() + r->options.timeout;
  auto channel = r->channel;
  // Waits (bounded) when no pipeline can take requests right now.
  if (std::string why; !entry_->wait_until_available(why)) throw UnavailableError(why);
  if (entry_->queued() >= config_.max_queue) {
    throw QueueFullError(fmt::format("{} requests are waiting; try again later", config_.max_queue));
  }
  requests_total_.fetch_add(1);
  prompt_tokens_total_.fetch_add(r->n_prompt);
  std::vector<Action> actions;
  {
    std::lock_guard lock(mutex_);
    if (closed_) fail("the engine is shutting down");
    r->id = next_id_++;
    r->last_progress = std::chrono::steady_clock::now();  // not counting the wait for a pipeline
    if (r->max_tokens == 0) {
      finish(*r, FinishReason::Length, {}, actions);
      return channel;
    }
    requests_.emplace(r->id, r);
    actions.push_back(Action::open(r->setup(config_.reuse_prefix), r->tokens));
  }
  perform(actions);
  return channel;
}

void RequestHead::on_tokens(std::vector<SampledToken> tokens) {
  std::vector<Action> actions;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    for (const SampledToken& t : tokens) handle(t, actions);
  }
  perform(actions);
}

void RequestHead::handle(const SampledToken& t, std::vector<Action>& actions) {
  auto it = requests_.find(t.request);
  if (it == requests_.end()) return;  // an earlier attempt's late answer, or a finished request
  Request& r = *it->second;
  if (t.no_route) return finish(r, FinishReason::Error, t.error, actions);  // it waited already
  if (!t.error.empty()) {
    // Counted only when the request may be to blame: its route was not merely stale, and it got
    // no token since it was opened (a request that kills the stages it runs on fails within its
    // attempts; one that loses a peer mid-stream is no more suspect than any other).
    return retry_or_fail(r, t.error, actions, /*counted=*/t.stale_node.empty() && r.computing_history);
  }
  if (t.position != int32_t(r.tokens.size())) return;  // a duplicate: the token is already here
  if (r.channel->cancelled()) return finish(r, FinishReason::Cancelled, {}, actions);
  if (std::chrono::steady_clock::now() >= r.deadline) return finish(r, FinishReason::Timeout, {}, actions);
  if (t.token < 0 || t.token >= config_.n_vocab) {
    return retry_or_fail(r, fmt::format("the last stage sampled token id {}", t.token), actions);
  }
  accept_token(r, t, actions);
}

void RequestHead::accept_token(Request& r, const SampledToken& t, std::vector<Action>& actions) {
  const int32_t token = t.token;
  const bool stop_token =
      (!r.options.ignore_eos && tokenizer_->is_end_of_generation(token)) ||
      std::find(r.options.stop_tokens.begin(), r.options.stop_tokens.end(), token) != r.options.stop_tokens.end();
  if (stop_token) return finish(r, FinishReason::Stop, {}, actions);
  r.tokens.push_back(token);
  r.last_progress = std::chrono::steady_clock::now();
  r.computing_history = false;
  generated_tokens_total_.fetch_add(1);
  StreamEvent event;
  GeneratedToken generated{token, tokenizer_->token_piece(token), 0, {}};
  if (r.options.logprobs) {
    generated.logprob = t.info.logprob;
    generated.top = t.info.top;
  }
  event.tokens.push_back(std::move(generated));
  event.text = r.stop_strings.push(r.detokenizer.push(token));
  event.prompt_tokens = r.n_prompt;
  event.completion_tokens = r.generated();
  if (r.stop_strings.stopped()) {
    event.finish = FinishReason::Stop;
  } else if (r.generated() >= r.max_tokens) {
    event.text += r.stop_strings.push(r.detokenizer.flush());
    event.text += r.stop_strings.flush();
    event.finish = r.stop_strings.stopped() ? FinishReason::Stop : FinishReason::Length;
  }
  const bool done = event.finish != FinishReason::None;
  r.channel->push(std::move(event));
  if (done) {
    r.finished = true;
    actions.push_back(Action::release(r.id, r.tokens));
    requests_.erase(r.id);
    return;
  }
  actions.push_back(Action::append(r.id, t.position, token));
}

void RequestHead::retry_or_fail(Request& r, const std::string& error, std::vector<Action>& actions, bool counted) {
  if ((counted && r.attempts >= config_.max_attempts) || r.opens >= kMaxOpens) {
    return finish(r, FinishReason::Error, error, actions);
  }
  spdlog::warn("request {} failed on its pipeline ({}); retrying with its {} tokens", r.id, error, r.tokens.size());
  actions.push_back(Action::release(r.id));
  auto self = requests_.at(r.id);
  requests_.erase(r.id);
  if (counted) ++r.attempts;
  ++r.opens;
  r.last_progress = std::chrono::steady_clock::now();
  r.computing_history = true;
  r.id = next_id_++;
  requests_.emplace(r.id, self);
  // The failed pipeline's stages may hold only part of the prefix: compute it all again.
  actions.push_back(Action::open(r.setup(false), r.tokens));
}

void RequestHead::finish(Request& r, FinishReason reason, std::string error, std::vector<Action>& actions) {
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
  actions.push_back(Action::release(r.id, r.tokens));
  requests_.erase(r.id);
}

void RequestHead::perform(std::vector<Action>& actions) {
  for (Action& a : actions) {
    try {
      switch (a.kind) {
        case Action::Kind::Open: entry_->open(std::move(a.setup), std::move(a.tokens)); break;
        case Action::Kind::Append: entry_->append(a.request, a.position, a.token); break;
        case Action::Kind::Release:
          if (!a.tokens.empty()) entry_->completed(a.request, a.tokens);
          entry_->release(a.request);
          break;
        case Action::Kind::Stalled: entry_->stalled(a.request); break;
      }
    } catch (const std::exception& e) {
      if (a.kind == Action::Kind::Release || a.kind == Action::Kind::Stalled) continue;
      // No pipeline took it: the request ends here with the reason.
      std::vector<Action> more;
      {
        std::lock_guard lock(mutex_);
        auto it = requests_.find(a.request);
        if (it != requests_.end()) finish(*it->second, FinishReason::Error, e.what(), more);
      }
      for (Action& m : more) {
        if (m.kind == Action::Kind::Release) entry_->release(m.request);
      }
    }
  }
  actions.clear();
}

void RequestHead::reap() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    reaper_wake_.wait_for(lock, std::chrono::milliseconds(20));
    const auto now = std::chrono::steady_clock::now();
    std::vector<Action> actions;
    std::vector<std::shared_ptr<Request>> ended;
    for (auto& [id, r] : requests_) {
      if (r->channel->cancelled()) {
        ended.push_back(r);
      } else if (now >= r->deadline) {
        ended.push_back(r);
      }
    }
    for (auto& r : ended) {
      finish(*r, r->channel->cancelled() ? FinishReason::Cancelled : FinishReason::Timeout, {}, actions);
    }
    watch_progress(now, actions);
    if (actions.empty()) continue;
    lock.unlock();
    perform(actions);
    lock.lock();
  }
}

void RequestHead::watch_progress(std::chrono::steady_clock::time_point now, std::vector<Action>& actions) {
  if (config_.progress_timeout.count() <= 0 || !entry_) return;
  const double floor = std::chrono::duration<double>(config_.progress_timeout).count();
  std::vector<std::shared_ptr<Request>> stalled;
  for (auto& [id, r] : requests_) {
    const double silent = std::chrono::duration<double>(now - r->last_progress).count();
    const double backoff = double(1 << std::min(r->stalls, 16));
    if (silent < floor * backoff) continue;  // cheap test first
    // Positions the route still has to compute before the next token: the whole history
    // after an open (prefix reuse is not counted on), one while decoding.
    const int tokens = r->computing_history ? int(r->tokens.size()) : 1;
    if (silent >= std::max(floor, entry_->expected_seconds(id, tokens)) * backoff) stalled.push_back(r);
  }
  // (Collected first: a retry re-keys requests_.)
  for (auto& r : stalled) {
    const double silent = std::chrono::duration<double>(now - r->last_progress).count();
    ++r->stalls;
    actions.push_back(Action::stalled(r->id));  // before the release forgets the route
    retry_or_fail(*r, fmt::format("no progress for {:.1f} s on its route", silent), actions, /*counted=*/false);
  }
}

EngineStats RequestHead::stats() const {
  EngineStats s;
  s.requests_total = requests_total_.load();
  s.prompt_tokens_total = prompt_tokens_total_.load();
  s.generated_tokens_total = generated_tokens_total_.load();
  if (entry_) entry_->add_stats(s);
  return s;
}

}  // namespace px
