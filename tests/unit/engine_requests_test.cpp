// The serving engine's request semantics on a small synthetic model: the same tokens as generate(), stop strings and
// stop tokens, logprobs, seeds and RNG streams, the bounded queue, cancel, timeout, stats.
#include <gtest/gtest.h>

#include "unit/test_temp_dir.h"

#include <chrono>

#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/model_shard.h"
#include "model/synth.h"
#include "runtime/generate.h"
#include "runtime/batch_engine.h"
#include "tokenizer/tokenizer.h"

namespace px {
namespace {

using namespace std::chrono_literals;

const std::string& model_path() {
  static const std::string path = [] {
    SynthSpec spec;
    spec.n_layers = 2;
    spec.n_embd = 64;
    spec.n_heads = 4;
    spec.n_kv_heads = 2;
    spec.n_ff = 128;
    spec.n_ctx = 1024;
    spec.seed = 11;
    const std::string p = px::test::temp_dir() + "serial_engine_model.gguf";
    write_synthetic_model(spec, p);
    return p;
  }();
  return path;
}

std::unique_ptr<BatchEngine> make_engine(int max_queue = 8, int max_running = 16) {
  BatchEngineConfig options;
  options.scheduler.max_running = max_running;
  options.context_size = 1024;
  options.n_threads = 1;
  options.max_queue = max_queue;
  options.kv_cache_tokens = 8192;
  return BatchEngine::load(model_path(), options);
}

struct Collected {
  std::vector<GeneratedToken> tokens;
  std::vector<std::string> texts;  // per event
  std::string text;
  FinishReason finish = FinishReason::None;
  int completion_tokens = 0;
  std::vector<int32_t> ids() const {
    std::vector<int32_t> out;
    for (const auto& t : tokens) out.push_back(t.id);
    return out;
  }
};

Collected collect(RequestStream& stream, std::chrono::seconds limit = 30s) {
  Collected c;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  StreamEvent e;
  while (c.finish == FinishReason::None && std::chrono::steady_clock::now() < deadline) {
    if (!stream.next(e, 50ms)) continue;
    c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
    c.texts.push_back(e.text);
    c.text += e.text;
    c.finish = e.finish;
    c.completion_tokens = e.completion_tokens;
  }
  return c;
}

RequestOptions greedy(int max_tokens) {
  RequestOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  return o;
}

std::vector<int32_t> prompt_of(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, true, true);
}

TEST(EngineRequests, GreedyOutputMatchesTheGenerateLoop) {
  auto engine = make_engine();
  const auto prompt = prompt_of(engine->tokenizer(), "The quick brown fox");
  const Collected got = collect(*engine->submit(prompt, greedy(12)));

  auto shard = ModelShard::load(model_path());
  ThreadPool pool(1);
  KvCache cache(shard->config(), shard->range(), 1024);
  ForwardPass pass(shard, cache, pool);
  GenerateOptions g;
  g.max_tokens = 12;
  g.sampling.temperature = 0;
  g.is_stop_token = [&](int32_t t) { return engine->tokenizer().is_end_of_generation(t); };
  const std::vector<int32_t> expected = generate(pass, cache, 0, prompt, g);

  EXPECT_EQ(got.ids(), expected);
  EXPECT_EQ(got.text, engine->tokenizer().decode(expected));
  EXPECT_EQ(got.completion_tokens, int(expected.size()));
  EXPECT_EQ(got.finish, expected.size() == 12 ? FinishReason::Length : FinishReason::Stop);
}

TEST(EngineRequests, StopStringEndsTheOutputBeforeIt) {
  auto engine = make_engine();
  const auto prompt = prompt_of(engine->tokenizer(), "Hello, how are");
  RequestOptions o = greedy(40);
  o.ignore_eos = true;
  const Collected full = collect(*engine->submit(prompt, o));
  ASSERT_EQ(full.finish, FinishReason::Length);
  // A stop string taken from the middle of the output (two printable ASCII bytes).
  size_t at = std::string::npos;
  for (size_t i = full.text.size() / 3; i + 1 < full.text.size(); ++i) {
    if (std::isprint(static_cast<unsigned char>(full.text[i])) && std::isprint(static_cast<unsigned char>(full.text[i + 1]))) {
      at = i;
      break;
    }
  }
  ASSERT_NE(at, std::string::npos) << "no ASCII pair in " << full.text;
  const std::string stop = full.text.substr(at, 2);
  o.stop = {stop};
  const Collected cut = collect(*engine->submit(prompt, o));
  EXPECT_EQ(cut.finish, FinishReason::Stop);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  for (const std::string& piece : cut.texts) EXPECT_EQ(piece.find(stop), std::string::npos);
}

TEST(EngineRequests, StopTokenIdsEndGenerationWithoutTheToken) {
  auto engine = make_engine();
  const auto prompt = prompt_of(engine->tokenizer(), "A model is");
  RequestOptions o = greedy(10);
  o.ignore_eos = true;
  const std::vector<int32_t> full = collect(*engine->submit(prompt, o)).ids();
  ASSERT_EQ(full.size(), 10u);
  o.stop_tokens = {full[4]};
  const Collected cut = collect(*engine->submit(prompt, o));
  const auto first = std::find(full.begin(), full.end(), full[4]);
  EXPECT_EQ(cut.ids(), std::vector<int32_t>(full.begin(), first));
  EXPECT_EQ(cut.finish, FinishReason::Stop);
}

TEST(EngineRequests, LogprobsComeWithTopAlternatives) {
  auto engine = make_engine();
  RequestOptions o = greedy(5);
  o.ignore_eos = true;
  o.logprobs = true;
  o.top_logprobs = 3;
  const Collected c = collect(*engine->submit(prompt_of(engine->tokenizer(), "In the morning"), o));
  ASSERT_EQ(c.tokens.size(), 5u);
  for (const GeneratedToken& t : c.tokens) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_LE(t.logprob, 0.0f);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t.top[0].token, t.id);
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
    EXPECT_EQ(t.text, engine->tokenizer().token_piece(t.id));
  }
}

TEST(EngineRequests, SameSeedAndStreamRepeatOtherStreamsDiffer) {
  auto engine = make_engine();
  const auto prompt = prompt_of(engine->tokenizer(), "Every story");
  RequestOptions o;
  o.max_tokens = 16;
  o.ignore_eos = true;
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.min_p = 0.0f;
  o.sampling.seed = 42;
  const auto a = collect(*engine->submit(prompt, o)).ids();
  const auto b = collect(*engine->submit(prompt, o)).ids();
  o.stream_id = 1;
  const auto c = collect(*engine->submit(prompt, o)).ids();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(EngineRequests, FullQueueThrowsAndCancelledRequestsEnd) {
  auto engine = make_engine(/*max_queue=*/1, /*max_running=*/1);
  const auto prompt = prompt_of(engine->tokenizer(), "x");
  RequestOptions long_run = greedy(1000);
  long_run.ignore_eos = true;
  auto running = engine->submit(prompt, long_run);
  StreamEvent first;
  ASSERT_TRUE(running->next(first, 10s));  // it is running: the queue is empty again
  auto waiting = engine->submit(prompt, long_run);
  EXPECT_THROW(engine->submit(prompt, long_run), QueueFullError);
  EXPECT_EQ(engine->stats().requests_queued, 1);
  waiting->cancel();
  running->cancel();
  EXPECT_EQ(collect(*running, 10s).finish, FinishReason::Cancelled);
  EXPECT_EQ(collect(*waiting, 10s).finish, FinishReason::Cancelled);
}

TEST(EngineRequests, TimeoutEndsTheRequest) {
  auto engine = make_engine();
  RequestOptions o = greedy(1000);
  o.ignore_eos = true;
  o.timeout = 1ms;
  const Collected c = collect(*engine->submit(prompt_of(engine->tokenizer(), "x"), o));
  EXPECT_EQ(c.finish, FinishReason::Timeout);
  EXPECT_LT(c.tokens.size(), 1000u);
}

TEST(EngineRequests, MaxTokensZeroGeneratesNothing) {
  auto engine = make_engine();
  const Collected c = collect(*engine->submit(prompt_of(engine->tokenizer(), "x"), greedy(0)));
  EXPECT_TRUE(c.tokens.empty());
  EXPECT_EQ(c.finish, FinishReason::Length);
}

TEST(EngineRequests, RejectsRequestsThatCanNeverRun) {
  auto engine = make_engine();
  EXPECT_THROW(engine->submit({}, greedy(4)), InvalidRequestError);
  EXPECT_THROW(engine->submit(std::vector<int32_t>(engine->context_size(), 1), greedy(4)), InvalidRequestError);
  EXPECT_THROW(engine->submit({engine->tokenizer().n_vocab()}, greedy(4)), InvalidRequestError);
  RequestOptions bad = greedy(4);
  bad.sampling.temperature = -1;
  EXPECT_THROW(engine->submit({1, 2}, bad), InvalidRequestError);
  EXPECT_THROW(engine->submit({1, 2}, greedy(-1)), InvalidRequestError);
}

TEST(EngineRequests, StatsCountRequestsAndTokens) {
  auto engine = make_engine();
  const auto prompt = prompt_of(engine->tokenizer(), "Hello");
  RequestOptions o = greedy(6);
  o.ignore_eos = true;
  const Collected c = collect(*engine->submit(prompt, o));
  ASSERT_EQ(c.tokens.size(), 6u);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (engine->stats().requests_running != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.requests_total, 1);
  EXPECT_EQ(s.requests_running, 0);
  EXPECT_EQ(s.requests_queued, 0);
  EXPECT_EQ(s.prompt_tokens_total, int64_t(prompt.size()));
  EXPECT_EQ(s.generated_tokens_total, 6);
  EXPECT_EQ(s.kv_cache_usage, 0.0);
  EXPECT_EQ(engine->context_size(), 1024);
  EXPECT_EQ(engine->model_id(), "serial_engine_model.gguf");
}

}  // namespace
}  // namespace px
