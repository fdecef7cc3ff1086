// `parallax bench`: prefill and decode speed of a model on this machine, next to the memory
// read bandwidth measured in the same run (decode's roofline), and how fast the model's
// SHA-256 identity (model/model_digest.h) hashes its weights.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "core/bandwidth.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/model_digest.h"
#include "sampling/sampler.h"

namespace px::cli {
namespace {

struct BenchArgs {
  std::string model;
  int prompt_tokens = 128;
  int decode_tokens = 64;
  int threads = 0;
  int repeats = 3;
  bool json = false;
};

struct Timing {
  double prefill_tps = 0;
  double decode_tps = 0;
};

Timing run_once(ForwardPass& pass, KvCache& cache, const BenchArgs& args, int n_vocab) {
  using Clock = std::chrono::steady_clock;
  std::vector<int32_t> prompt(args.prompt_tokens);
  for (int i = 0; i < args.prompt_tokens; ++i) {
    prompt[i] = int32_t(counter_uniform(1, 0, i) * n_vocab);
  }
  cache.remove(0);
  ForwardBatch batch;
  ForwardResult result;
  batch.add_tokens(0, prompt, 0);
  const auto t0 = Clock::now();
  pass.run(batch, result);
  const auto t1 = Clock::now();
  int32_t token = prompt.back();
  for (int i = 0; i < args.decode_tokens; ++i) {
    batch.clear();
    batch.add_tokens(0, std::span(&token, 1), args.prompt_tokens + i);
    pass.run(batch, result);
    const auto row = result.row(0);
    token = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
  }
  const auto t2 = Clock::now();
  return {args.prompt_tokens / std::chrono::duration<double>(t1 - t0).count(),
          args.decode_tokens / std::chrono::duration<double>(t2 - t1).count()};
}

void run_bench(const BenchArgs& args) {
  if (args.prompt_tokens < 1 || args.decode_tokens < 1 || args.repeats < 1) {
    fail("bench needs -p >= 1, -n >= 1 and --repeat >= 1");
  }
  auto shard = ModelShard::load(args.model);
  const ModelConfig& config = shard->config();
  const int n_ctx = args.prompt_tokens + args.decode_tokens;
  ThreadPool pool(args.threads);
  KvCache cache(config, shard->range(), n_ctx);
  ForwardPass pass(shard, cache, pool);

  run_once(pass, cache, {args.model, std::min(args.prompt_tokens, 8), 2, args.threads, 1, false},
           config.n_vocab);  // warm-up: page in the weights
  // The bandwidth of a shared machine drifts by tens of percent within seconds, so each run
  // measures it right before itself, and the roofline uses the bandwidth measured next to the
  // best decode.
  Timing best;
  double bandwidth = 0;
  for (int r = 0; r < args.repeats; ++r) {
    const double bandwidth_now = measure_read_bandwidth(pool, size_t(512) << 20, 3);
    const Timing t = run_once(pass, cache, args, config.n_vocab);
    best.prefill_tps = std::max(best.prefill_tps, t.prefill_tps);
    if (t.decode_tps > best.decode_tps) {
      best.decode_tps = t.decode_tps;
      bandwidth = bandwidth_now;
    }
  }
  DigestRun digest;
  digest_weights(shard->weights(), &pool, {}, &digest);
  const double digest_gbps = digest.seconds > 0 ? digest.bytes / digest.seconds / 1e9 : 0;
  const double bytes_per_token = double(shard->weight_bytes_per_token());
  const double roofline_tps = bandwidth / bytes_per_token;
  const double roofline_pct = 100.0 * best.decode_tps / roofline_tps;
  if (args.json) {
    nlohmann::json out = {{"prefill_tps", best.prefill_tps},
                          {"decode_tps", best.decode_tps},
                          {"bandwidth_gbps", bandwidth / 1e9},
                          {"roofline_pct", roofline_pct},
                          {"digest_gbps", digest_gbps},
                          {"roofline_tps", roofline_tps},
                          {"weight_bytes_per_token", bytes_per_token},
                          {"threads", pool.size()},
                          {"prompt_tokens", args.prompt_tokens},
                          {"decode_tokens", args.decode_tokens}};
    std::cout << out.dump() << std::endl;
    return;
  }
  std::cout << fmt::format(
      "model        {}\nthreads      {}\nbandwidth    {:.2f} GB/s (read, measured now)\n"
      "weights      {:.1f} MB read per decoded token\nprefill      {:.1f} tok/s ({} tokens)\n"
      "decode       {:.1f} tok/s ({} tokens)\nroofline     {:.1f} tok/s -> decode at {:.1f} %\n"
      "digest       {:.2f} GB/s (SHA-256 of {:.1f} MB of weights, the model id)\n",
      args.model, pool.size(), bandwidth / 1e9, bytes_per_token / 1e6, best.prefill_tps,
      args.prompt_tokens, best.decode_tps, args.decode_tokens, roofline_tps, roofline_pct, digest_gbps,
      digest.bytes / 1e6);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode speed against the memory roofline");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("-p,--prompt-tokens", args->prompt_tokens, "Prompt length")->capture_default_str();
  cmd->add_option("-n,--decode-tokens", args->decode_tokens, "Tokens to decode")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--repeat", args->repeats, "Runs; the best is reported")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace px::cli
