// `parallax bench-serve`: the serving runtime under load, without HTTP in the way: aggregate
// decode tokens/s at several numbers of concurrent streams, and time to first token of a
// repeated long prompt with and without the prefix cache.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "core/thread_pool.h"
#include "runtime/loaded_model.h"
#include "runtime/batch_engine.h"

namespace px::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchServeArgs {
  std::string model;
  std::vector<int> concurrency = {1, 4, 16};
  int decode_tokens = 64;
  int prompt_tokens = 32;
  int long_prompt_tokens = 1000;
  int threads = 0;
  bool json = false;
};

std::vector<int32_t> synthetic_prompt(int n, int n_vocab, uint64_t stream) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = int32_t(counter_uniform(7, stream, i) * (n_vocab - 1)) + 1;
  return p;
}

// Waits for a stream's end; returns when each of its tokens arrived.
std::vector<Clock::time_point> drain(RequestStream& stream) {
  StreamEvent event;
  std::vector<Clock::time_point> arrivals;
  while (true) {
    if (!stream.next(event, std::chrono::milliseconds(100))) continue;
    arrivals.insert(arrivals.end(), event.tokens.size(), Clock::now());
    if (event.finish != FinishReason::None) {
      if (event.finish == FinishReason::Error) fail("request failed: {}", event.error);
      if (arrivals.empty()) fail("a request finished without a token");
      return arrivals;
    }
  }
}

std::unique_ptr<BatchEngine> make_engine(const std::shared_ptr<ModelShard>& shard,
                                         const std::shared_ptr<Tokenizer>& tokenizer, ThreadPool& pool,
                                         int max_running, bool prefix_caching, int context) {
  BatchEngineConfig config;
  config.scheduler.max_running = max_running;
  config.scheduler.max_batch_tokens = 512;
  config.context_size = context;
  config.kv_cache_tokens = int64_t(max_running + 1) * context;
  config.prefix_caching = prefix_caching;
  return std::make_unique<BatchEngine>(shard, tokenizer, pool, config, "bench");
}

void run_bench_serve(const BenchServeArgs& args) {
  const LoadedModel model = LoadedModel::open(args.model);
  const auto& [tokenizer, shard] = model;
  const int n_vocab = shard->config().n_vocab;
  ThreadPool pool(args.threads);
  nlohmann::json report = {{"model", args.model}, {"threads", pool.size()}};

  RequestOptions options;
  options.max_tokens = args.decode_tokens;
  options.sampling.temperature = 0;
  options.ignore_eos = true;  // every stream decodes exactly decode_tokens
  double single = 0;
  for (int streams : args.concurrency) {
    auto engine = make_engine(shard, tokenizer, pool, streams, true, args.prompt_tokens + args.decode_tokens + 16);
    std::vector<std::shared_ptr<RequestStream>> handles;
    for (int s = 0; s < streams; ++s) {
      handles.push_back(engine->submit(synthetic_prompt(args.prompt_tokens, n_vocab, s), options));
    }
    // One reader per stream, so each token is timed when the engine emits it.
    std::vector<std::vector<Clock::time_point>> arrivals(streams);
    std::vector<std::thread> readers;
    std::vector<std::string> errors(streams);
    for (int s = 0; s < streams; ++s) {
      readers.emplace_back([&, s] {
        try {
          arrivals[s] = drain(*handles[s]);
        } catch (const std::exception& e) {
          errors[s] = e.what();
        }
      });
    }
    for (auto& r : readers) r.join();
    for (const std::string& e : errors) {
      if (!e.empty()) fail("{}", e);
    }
    // Decode rate once every stream is decoding: from the last first token to the last token,
    // so the prompts' prefill is not counted.
    Clock::time_point decoding{}, end{};
    for (const auto& a : arrivals) {
      decoding = std::max(decoding, a.front());
      end = std::max(end, a.back());
    }
    int64_t tokens = 0;
    for (const auto& a : arrivals) tokens += std::count_if(a.begin(), a.end(), [&](auto t) { return t > decoding; });
    const double seconds = std::chrono::duration<double>(end - decoding).count();
    const double tps = seconds > 0 ? double(tokens) / seconds : 0;
    if (streams == 1) single = tps;
    report["decode"].push_back({{"streams", streams}, {"tokens_per_second", tps},
                                {"vs_single_stream", single > 0 ? tps / single : 0}});
    if (!args.json) {
      std::cout << fmt::format("{:>3} streams: {:8.1f} tok/s aggregate{}\n", streams, tps,
                               single > 0 ? fmt::format(" ({:.2f}x one stream)", tps / single) : "");
    }
  }

  const std::vector<int32_t> long_prompt = synthetic_prompt(args.long_prompt_tokens, n_vocab, 99);
  options.max_tokens = 1;
  for (bool caching : {false, true}) {
    auto engine = make_engine(shard, tokenizer, pool, 1, caching, args.long_prompt_tokens + 16);
    double ttft[2] = {0, 0};
    for (int run = 0; run < 2; ++run) {
      const auto start = Clock::now();
      const auto arrivals = drain(*engine->submit(long_prompt, options));
      ttft[run] = std::chrono::duration<double>(arrivals.front() - start).count();
    }
    report["ttft"].push_back({{"prefix_caching", caching}, {"first_seconds", ttft[0]},
                              {"repeat_seconds", ttft[1]}});
    if (!args.json) {
      std::cout << fmt::format("TTFT {}-token prompt, prefix cache {}: first {:.3f} s, repeated {:.3f} s\n",
                               args.long_prompt_tokens, caching ? "on " : "off", ttft[0], ttft[1]);
    }
  }
  if (args.json) std::cout << report.dump() << std::endl;
}

}  // namespace

void register_bench_serve(CLI::App& app) {
  auto args = std::make_shared<BenchServeArgs>();
  CLI::App* cmd = app.add_subcommand("bench-serve", "Measure the serving runtime: concurrent decode and prefix-cached TTFT");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--concurrency", args->concurrency, "Concurrent streams to measure")->capture_default_str();
  cmd->add_option("-n,--decode-tokens", args->decode_tokens, "Tokens each stream decodes")->capture_default_str();
  cmd->add_option("-p,--prompt-tokens", args->prompt_tokens, "Prompt length of each stream")->capture_default_str();
  cmd->add_option("--long-prompt", args->long_prompt_tokens, "Prompt length for the TTFT test")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args] { run_bench_serve(*args); });
}

}  // namespace px::cli
