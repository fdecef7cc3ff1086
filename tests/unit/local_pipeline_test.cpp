// A model cut into 2, 3 or 4 in-process stages (chunks travel stage to stage, the last stage
// samples, the head feeds tokens back) gives the very tokens, logprobs and texts of one stage,
// also with many concurrent requests, chunked prefill, preemption and seeded sampling. Hostile
// chunks from a "peer" fail only their own request.
#include <gtest/gtest.h>

#include <thread>

#include "unit/test_temp_dir.h"

#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "runtime/batch_engine.h"

namespace px {
namespace {

using namespace std::chrono_literals;

struct Output {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::string text;
  FinishReason finish = FinishReason::None;
  std::string error;
};

Output drain(RequestStream& stream) {
  Output out;
  StreamEvent e;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!stream.next(e, 100ms)) continue;
    for (const auto& t : e.tokens) {
      out.ids.push_back(t.id);
      out.logprobs.push_back(t.logprob);
    }
    out.text += e.text;
    if (e.finish != FinishReason::None) {
      out.finish = e.finish;
      out.error = e.error;
      return out;
    }
  }
  ADD_FAILURE() << "stream did not finish in time";
  return out;
}

class LocalPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = px::test::temp_dir() + "pipeline.gguf";
    SynthSpec spec;
    spec.arch = "llama";
    spec.n_layers = 4;
    spec.n_embd = 64;
    spec.type = DType::Q8_0;
    write_synthetic_model(spec, path_);
  }

  // The model cut at `cuts` (e.g. {2} = two stages [0,2) [2,4)).
  std::unique_ptr<BatchEngine> make_engine(std::vector<int> cuts, SchedulerConfig scheduler = {},
                                           int64_t kv_tokens = 8192) {
    auto file = GgufFile::open(path_);
    auto tokenizer = Tokenizer::from_gguf(*file);
    std::vector<std::shared_ptr<const ModelShard>> shards;
    std::vector<ThreadPool*> pools;
    int begin = 0;
    cuts.push_back(4);
    for (int end : cuts) {
      shards.push_back(ModelShard::load(path_, {begin, end}));
      pools_.push_back(std::make_unique<ThreadPool>(1));
      pools.push_back(pools_.back().get());
      begin = end;
    }
    BatchEngineConfig config;
    config.scheduler = scheduler;
    config.context_size = 512;
    config.kv_cache_tokens = kv_tokens;
    return std::make_unique<BatchEngine>(shards, std::move(tokenizer), pools, config, "pipeline-test");
  }

  // Runs the same 8 concurrent requests (greedy and seeded sampling, with logprobs) on an engine.
  std::vector<Output> run_batch(BatchEngine& engine) {
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 8; ++i) {
      std::vector<int32_t> prompt;
      for (int j = 0; j < 5 + 13 * i; ++j) prompt.push_back(1 + (j * 7 + i * 31) % 250);
      RequestOptions o;
      o.max_tokens = 24;
      o.ignore_eos = true;
      o.logprobs = true;
      o.top_logprobs = 2;
      if (i % 2 == 0) {
        o.sampling.temperature = 0;
      } else {
        o.sampling.temperature = 0.9f;
        o.sampling.seed = 1000 + i;
      }
      streams.push_back(engine.submit(prompt, o));
    }
    std::vector<Output> outs;
    for (auto& s : streams) outs.push_back(drain(*s));
    return outs;
  }

  static inline std::string path_;
  std::vector<std::unique_ptr<ThreadPool>> pools_;
};

TEST_F(LocalPipelineTest, AnyCutGivesTheSingleStagesOutput) {
  auto single = make_engine({});
  const std::vector<Output> want = run_batch(*single);
  for (const auto& o : want) {
    ASSERT_EQ(o.finish, FinishReason::Length) << o.error;
    ASSERT_EQ(o.ids.size(), 24u);
  }
  for (std::vector<int> cuts : {std::vector<int>{2}, {1, 3}, {1, 2, 3}, {3}}) {
    auto engine = make_engine(cuts);
    EXPECT_EQ(engine->pipeline().stages(), cuts.size() + 1);
    const std::vector<Output> got = run_batch(*engine);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].ids, want[i].ids) << "request " << i << " with " << cuts.size() + 1 << " stages";
      EXPECT_EQ(got[i].logprobs, want[i].logprobs) << "request " << i;
      EXPECT_EQ(got[i].text, want[i].text);
      EXPECT_EQ(got[i].finish, want[i].finish);
    }
  }
}

TEST_F(LocalPipelineTest, ChunkedPrefillAndPreemptionDoNotChangeOutput) {
  auto single = make_engine({});
  const std::vector<Output> want = run_batch(*single);
  // Small steps and a KV cache too small for all eight at once: stage 0 preempts, the later
  // stages drop their copies and get them again.
  auto engine = make_engine({2}, {.max_batch_tokens = 16, .max_running = 4}, /*kv_tokens=*/400);
  const std::vector<Output> got = run_batch(*engine);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].ids, want[i].ids) << "request " << i;
    EXPECT_EQ(got[i].finish, want[i].finish) << got[i].error;
  }
  EXPECT_GT(engine->stats().preemptions_total, 0);
  // Every stage freed everything once the requests ended.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && engine->pipeline().stage_stats(1).running > 0) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(engine->pipeline().stage_stats(0).running, 0);
  EXPECT_EQ(engine->pipeline().stage_stats(1).running, 0);
}

// A sink that records what a lone later stage produces.
class RecordingSink : public StageSink {
 public:
  void forward(std::vector<StageChunk> chunks) override {
    std::lock_guard lock(mutex);
    for (auto& c : chunks) forwarded.push_back(std::move(c));
  }
  void sampled(std::vector<SampledToken> tokens) override {
    std::lock_guard lock(mutex);
    for (auto& t : tokens) this->tokens.push_back(std::move(t));
  }
  void released(RequestId request, bool) override {
    std::lock_guard lock(mutex);
    releases.push_back(request);
  }
  size_t count() {
    std::lock_guard lock(mutex);
    return tokens.size() + forwarded.size();
  }
  std::mutex mutex;
  std::vector<StageChunk> forwarded;
  std::vector<SampledToken> tokens;
  std::vector<RequestId> releases;
};

TEST_F(LocalPipelineTest, HostileChunksFailOnlyTheirRequest) {
  auto shard = ModelShard::load(path_, {2, 4});
  ThreadPool pool(1);
  RecordingSink sink;
  StageConfig config;
  config.context_size = 64;
  config.kv_cache_tokens = 1024;
  StageExecutor stage(shard, pool, config, sink);
  const int width = shard->config().n_embd;

  auto chunk = [&](RequestId id, int begin, std::vector<int32_t> tokens, bool setup) {
    StageChunk c;
    c.request = id;
    c.begin = begin;
    c.hidden.assign(tokens.size() * width, 0.01f);
    c.tokens = std::move(tokens);
    c.sample = true;
    if (setup) {
      c.setup = StageRequestSetup{};
      c.setup->id = id;
      c.setup->sampling.temperature = 0;
      c.history.assign(begin, 5);
    }
    return c;
  };
  std::vector<StageChunk> batch;
  batch.push_back(chunk(1, 0, {1, 2, 3}, true));              // fine
  auto short_hidden = chunk(2, 0, {1, 2}, true);
  short_hidden.hidden.resize(width);                          // one row missing
  batch.push_back(std::move(short_hidden));
  batch.push_back(chunk(3, 0, {1, -4}, true));                // bad token id
  batch.push_back(chunk(4, 0, std::vector<int32_t>(80, 1), true));  // past the context
  auto no_history = chunk(5, 4, {1}, true);
  no_history.history.clear();                                 // history must cover [0, begin)
  batch.push_back(std::move(no_history));
  batch.push_back(chunk(6, 7, {1}, true));                    // KV of [0, 7) was never computed here
  batch.push_back(chunk(7, 0, {1}, false));                   // unknown request, no setup: dropped
  stage.receive(std::move(batch));

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && sink.count() < 6) std::this_thread::sleep_for(2ms);
  std::lock_guard lock(sink.mutex);
  ASSERT_EQ(sink.tokens.size(), 6u);
  std::map<RequestId, SampledToken> by_id;
  for (auto& t : sink.tokens) by_id[t.request] = t;
  EXPECT_TRUE(by_id[1].error.empty()) << by_id[1].error;
  EXPECT_EQ(by_id[1].position, 3);
  EXPECT_GE(by_id[1].token, 0);
  EXPECT_NE(by_id[2].error.find("hidden values"), std::string::npos) << by_id[2].error;
  EXPECT_NE(by_id[3].error.find("vocabulary"), std::string::npos) << by_id[3].error;
  EXPECT_NE(by_id[4].error.find("context"), std::string::npos) << by_id[4].error;
  EXPECT_NE(by_id[5].error.find("history"), std::string::npos) << by_id[5].error;
  EXPECT_NE(by_id[6].error.find("resend from position 0"), std::string::npos) << by_id[6].error;
  EXPECT_EQ(by_id.count(7), 0u);
}

}  // namespace
}  // namespace px
