// The continuous-batching engine: batching, chunking and preemption never change a request's
// output; cancellation, timeouts and a full queue behave.
#include "runtime/batch_engine.h"

#include <gtest/gtest.h>

#include "unit/test_temp_dir.h"

#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "runtime/generate.h"

namespace px {
namespace {

class BatchEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = px::test::temp_dir() + "batch_engine.gguf";
    SynthSpec spec;
    spec.arch = "qwen3";
    spec.n_layers = 2;
    spec.n_embd = 64;
    spec.type = DType::Q8_0;
    write_synthetic_model(spec, path_);
  }

  void SetUp() override {
    file_ = GgufFile::open(path_);
    shard_ = ModelShard::load(path_);
    tokenizer_ = Tokenizer::from_gguf(*file_);
  }

  std::unique_ptr<BatchEngine> make_engine(SchedulerConfig scheduler, int max_queue = 64,
                                           int64_t kv_tokens = 4096, bool prefix_caching = true) {
    BatchEngineConfig config;
    config.scheduler = scheduler;
    config.context_size = 256;
    config.max_queue = max_queue;
    config.kv_cache_tokens = kv_tokens;
    config.prefix_caching = prefix_caching;
    return std::make_unique<BatchEngine>(shard_, tokenizer_, pool_, config, "test-model");
  }

  // The reference: the same request alone through the plain generation loop.
  std::vector<int32_t> alone(const std::vector<int32_t>& prompt, const RequestOptions& options) {
    KvCache cache(shard_->config(), shard_->range(), 256);
    ForwardPass pass(shard_, cache, reference_pool_);  // the engine's thread uses pool_
    GenerateOptions g;
    g.max_tokens = options.max_tokens;
    g.sampling = options.sampling;
    g.is_stop_token = [&](int32_t t) { return tokenizer_->is_end_of_generation(t); };
    return generate(pass, cache, 0, prompt, g);
  }

  // Reads a stream to its end (bounded in time); returns the tokens and the final event.
  static std::pair<std::vector<int32_t>, StreamEvent> drain(RequestStream& stream) {
    std::vector<int32_t> tokens;
    StreamEvent event, last;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!stream.next(event, std::chrono::milliseconds(100))) continue;
      for (const GeneratedToken& t : event.tokens) tokens.push_back(t.id);
      if (event.finish != FinishReason::None) return {tokens, event};
    }
    ADD_FAILURE() << "stream did not finish in time";
    return {tokens, last};
  }

  static std::vector<int32_t> prompt_for(int i) {
    std::vector<int32_t> p;
    for (int k = 0; k < 3 + (i * 5) % 23; ++k) p.push_back(int32_t((i * 131 + k * 17) % 250 + 1));
    return p;
  }

  static inline std::string path_;
  std::shared_ptr<GgufFile> file_;
  std::shared_ptr<ModelShard> shard_;
  std::shared_ptr<Tokenizer> tokenizer_;
  ThreadPool pool_{2};
  ThreadPool reference_pool_{2};
};

TEST_F(BatchEngineTest, SixteenConcurrentRequestsEqualEachAlone) {
  auto engine = make_engine({.max_batch_tokens = 64, .max_running = 16, .kv_capacity_tokens = 4096});
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<RequestOptions> options(16);
  for (int i = 0; i < 16; ++i) {
    options[i].max_tokens = 12;
    options[i].sampling.temperature = i % 2 ? 0.0f : 0.9f;  // greedy and seeded sampling
    options[i].sampling.seed = 1000 + i;
    options[i].ignore_eos = false;
    streams.push_back(engine->submit(prompt_for(i), options[i]));
  }
  for (int i = 0; i < 16; ++i) {
    const auto [tokens, last] = drain(*streams[i]);
    EXPECT_EQ(tokens, alone(prompt_for(i), options[i])) << "request " << i;
  }
}

TEST_F(BatchEngineTest, PreemptionUnderATinyCacheKeepsOutputsUnchanged) {
  // 8 blocks of 16 positions for 4 running sequences of up to 41 tokens: requests are
  // preempted and recomputed.
  auto engine = make_engine({.max_batch_tokens = 8, .max_running = 4}, 64, /*kv_tokens=*/128);
  std::vector<std::shared_ptr<RequestStream>> streams;
  RequestOptions options;
  options.max_tokens = 16;
  options.sampling.temperature = 0;
  for (int i = 0; i < 6; ++i) streams.push_back(engine->submit(prompt_for(i), options));
  for (int i = 0; i < 6; ++i) {
    const auto [tokens, last] = drain(*streams[i]);
    EXPECT_EQ(tokens, alone(prompt_for(i), options)) << "request " << i;
  }
  EXPECT_GT(engine->stats().preemptions_total, 0);
}

TEST_F(BatchEngineTest, PrefixCacheReusesASharedPromptWithoutChangingOutputs) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < 100; ++i) prompt.push_back(int32_t((i * 37) % 250 + 1));
  RequestOptions options;
  options.max_tokens = 8;
  options.sampling.temperature = 0;
  for (bool caching : {true, false}) {
    auto engine = make_engine({}, 64, 4096, caching);
    const auto first = drain(*engine->submit(prompt, options)).first;
    const auto second = drain(*engine->submit(prompt, options)).first;
    EXPECT_EQ(first, alone(prompt, options));
    EXPECT_EQ(second, first);
    // The second request finds the first's 6 full blocks (96 tokens) cached.
    EXPECT_EQ(engine->stats().prefix_cache_hit_tokens, caching ? 96 : 0);
  }
}

TEST_F(BatchEngineTest, ReportsLengthUsageAndLogprobs) {
  auto engine = make_engine({});
  RequestOptions options;
  options.max_tokens = 5;
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  options.logprobs = true;
  options.top_logprobs = 3;
  auto stream = engine->submit({1, 2, 3}, options);
  StreamEvent event;
  int tokens = 0;
  FinishReason finish = FinishReason::None;
  int completion = 0;
  while (finish == FinishReason::None && stream->next(event, std::chrono::seconds(30))) {
    for (const GeneratedToken& t : event.tokens) {
      ++tokens;
      EXPECT_LE(t.logprob, 0.0f);
      ASSERT_EQ(t.top.size(), 3u);
      EXPECT_EQ(t.top[0].token, t.id);  // greedy picks the most likely token
    }
    finish = event.finish;
    completion = event.completion_tokens;
  }
  EXPECT_EQ(tokens, 5);
  EXPECT_EQ(finish, FinishReason::Length);
  EXPECT_EQ(completion, 5);
  EXPECT_FALSE(stream->next(event, std::chrono::milliseconds(1)));
}

TEST_F(BatchEngineTest, CancelAndTimeoutEndRequests) {
  auto engine = make_engine({});
  RequestOptions options;
  options.max_tokens = 200;
  options.ignore_eos = true;
  auto cancelled = engine->submit({1, 2, 3}, options);
  cancelled->cancel();
  EXPECT_EQ(drain(*cancelled).second.finish, FinishReason::Cancelled);
  options.timeout = std::chrono::milliseconds(1);
  auto timed_out = engine->submit({1, 2, 3}, options);
  EXPECT_EQ(drain(*timed_out).second.finish, FinishReason::Timeout);
}

TEST_F(BatchEngineTest, RejectsInvalidRequestsAndAFullQueue) {
  auto engine = make_engine({.max_batch_tokens = 4, .max_running = 1, .kv_capacity_tokens = 4096}, 2);
  RequestOptions options;
  EXPECT_THROW(engine->submit({}, options), InvalidRequestError);
  EXPECT_THROW(engine->submit(std::vector<int32_t>(300, 1), options), InvalidRequestError);
  EXPECT_THROW(engine->submit({1, 1 << 20}, options), InvalidRequestError);
  RequestOptions bad = options;
  bad.sampling.top_p = 2;
  EXPECT_THROW(engine->submit({1}, bad), InvalidRequestError);
  options.max_tokens = 100;
  options.ignore_eos = true;
  std::vector<std::shared_ptr<RequestStream>> held;
  bool rejected = false;
  for (int i = 0; i < 20 && !rejected; ++i) {
    try {
      held.push_back(engine->submit({1, 2, 3}, options));
    } catch (const QueueFullError&) {
      rejected = true;
    }
  }
  EXPECT_TRUE(rejected);
  for (auto& s : held) s->cancel();
}

}  // namespace
}  // namespace px
