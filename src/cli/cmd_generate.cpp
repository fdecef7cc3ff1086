// `parallax generate`: one prompt, one node (a one-stage pipeline), text to stdout.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "cli/commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "runtime/loaded_model.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"

namespace px::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int max_tokens = 128;
  int threads = 0;
  int ctx = 4096;
  bool json = false;
  bool seed_given = false;
  SamplingParams sampling;
};

void run_generate(GenerateArgs& args) {
  if (!args.seed_given) {
    args.sampling.seed = std::random_device{}();
    if (args.sampling.temperature > 0) {
      spdlog::info("seed {} (pass --seed to reproduce)", args.sampling.seed);
    }
  }
  args.sampling.validate();
  const LoadedModel model = LoadedModel::open(args.model);
  const auto& [tokenizer, shard] = model;
  const ModelConfig& config = shard->config();
  const int n_ctx = std::min(args.ctx, config.n_ctx_train);
  spdlog::info("{}: {} layers, {} wide, {} heads ({} kv), vocab {}, context {}", args.model,
               config.n_layers, config.n_embd, config.n_heads, config.n_kv_heads, config.n_vocab, n_ctx);

  ThreadPool pool(args.threads);
  KvCache cache(config, shard->range(), n_ctx);
  ForwardPass pass(shard, cache, pool);
  const std::vector<int32_t> prompt = tokenizer->encode(args.prompt, /*add_special=*/true,
                                                        /*parse_special=*/true);
  GenerateOptions options;
  options.max_tokens = args.max_tokens;
  options.sampling = args.sampling;
  options.is_stop_token = [&](int32_t t) { return tokenizer->is_end_of_generation(t); };

  StreamingDetokenizer detok(*tokenizer);
  std::string text;
  auto on_token = [&](int32_t token) {
    const std::string piece = detok.push(token);
    text += piece;
    if (!args.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  GenerateStats stats;
  const std::vector<int32_t> tokens = generate(pass, cache, 0, prompt, options, on_token, &stats);
  const std::string tail = detok.flush();
  text += tail;
  if (args.json) {
    nlohmann::json out = {{"tokens", tokens}, {"text", text}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::cout << tail << std::endl;
  }
  spdlog::info("prompt {} tokens in {:.3f} s ({:.1f} tok/s) | decode {} tokens in {:.3f} s ({:.1f} tok/s) | {} threads",
               stats.prompt_tokens, stats.prefill_seconds, stats.prefill_tps(), stats.generated_tokens,
               stats.decode_seconds, stats.decode_tps(), pool.size());
}

}  // namespace

void register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate a continuation of a prompt on this machine");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("-p,--prompt", args->prompt, "Prompt text")->required();
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", args->sampling.temperature, "Temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", args->sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", args->sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", args->sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", args->sampling.repetition_penalty, "Repetition penalty (1 = off)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", args->sampling.presence_penalty)->capture_default_str();
  cmd->add_option("--frequency-penalty", args->sampling.frequency_penalty)->capture_default_str();
  cmd->add_option("--repeat-last-n", args->sampling.penalty_last_n, "History seen by penalties (-1 = all)")
      ->capture_default_str();
  cmd->add_option("--seed", args->sampling.seed, "Sampling seed (random when not given)")
      ->each([args](const std::string&) { args->seed_given = true; });
  cmd->add_option("-t,--threads", args->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("-c,--ctx", args->ctx, "Context size (capped by the model's)")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print {\"tokens\": [...], \"text\": \"...\"} instead of text");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace px::cli
