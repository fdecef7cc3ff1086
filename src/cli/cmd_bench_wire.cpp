// parallax bench-wire: what each wire dtype costs in bytes and changes in output. The model is
// cut into --stages even stages in one process; at every boundary the hidden states go through
// the real wire codec (a Chunks frame encoded in the dtype, then decoded, as a peer receives
// it), and each prompt is continued greedily. Every dtype but f32 changes bits, so the report
// says how many continuations differ from f32's, and where they first do — not hidden.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <random>

#include "cli/commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/hf_json.h"
#include "model/kv_cache.h"
#include "model/model_shard.h"
#include "swarm/wire_codec.h"
#include "tokenizer/tokenizer.h"

namespace px::cli {
namespace {

using swarm::WireDType;

struct BenchWireArgs {
  std::string model;
  int stages = 2;
  int prompts = 32;
  int prompt_tokens = 24;
  int decode_tokens = 32;
  int threads = 2;
  uint64_t seed = 1;
  std::string prompts_file;
  bool json = false;
};

struct Continuation {
  std::vector<int32_t> tokens;
  size_t decode_frame_bytes = 0;  // one decode step's Chunks frame at one boundary
};

// Greedy continuation of `prompt` through `shards`, the hidden states crossing each boundary
// as a Chunks frame in `dtype`.
Continuation continue_greedy(const std::vector<std::shared_ptr<const ModelShard>>& shards,
                             const std::vector<int32_t>& prompt, int n, WireDType dtype, ThreadPool& pool) {
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<std::unique_ptr<ForwardPass>> passes;
  for (const auto& shard : shards) {
    caches.push_back(std::make_unique<KvCache>(shard->config(), shard->range(), int(prompt.size()) + n + 16));
    passes.push_back(std::make_unique<ForwardPass>(shard, *caches.back(), pool));
  }
  Continuation out;
  std::vector<int32_t> chunk = prompt;
  int begin = 0;
  ForwardBatch batch;
  ForwardResult result;
  for (int step = 0; step < n; ++step) {
    for (size_t s = 0; s < shards.size(); ++s) {
      batch.clear();
      batch.add_tokens(0, chunk, begin);
      if (s > 0) {
        StageChunk c;
        c.request = 1;
        c.begin = begin;
        c.tokens = chunk;
        c.hidden = std::move(result.values);
        swarm::v1::PipelineFrame frame;
        swarm::wire::encode(swarm::ChunksMessage{{std::move(c)}}, dtype, frame);
        if (step > 0) out.decode_frame_bytes = frame.ByteSizeLong();
        batch.hidden = std::move(std::get<swarm::ChunksMessage>(swarm::wire::decode(frame)).chunks.front().hidden);
      }
      passes[s]->run(batch, result);
    }
    const auto logits = result.row(0);
    const int32_t token = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.tokens.push_back(token);
    begin += int(chunk.size());
    chunk = {token};
  }
  return out;
}

std::vector<std::vector<int32_t>> make_prompts(const BenchWireArgs& args, int n_vocab) {
  std::vector<std::vector<int32_t>> prompts;
  if (!args.prompts_file.empty()) {
    auto file = GgufFile::open(args.model);
    const auto tokenizer = Tokenizer::from_gguf(*file);
    const std::string text = read_small_file(args.prompts_file, size_t(16) << 20, "prompts file");
    size_t start = 0;
    while (start < text.size() && int(prompts.size()) < args.prompts) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) prompts.push_back(tokenizer->encode(std::string_view(text).substr(start, end - start), true, false));
      start = end + 1;
    }
    std::erase_if(prompts, [](const auto& p) { return p.empty(); });
    if (prompts.empty()) fail("{} has no prompt (one per line)", args.prompts_file);
    return prompts;
  }
  std::mt19937_64 rng(args.seed);
  std::uniform_int_distribution<int32_t> id(0, n_vocab - 1);
  for (int p = 0; p < args.prompts; ++p) {
    std::vector<int32_t> prompt(size_t(args.prompt_tokens));
    for (int32_t& t : prompt) t = id(rng);
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

void run_bench_wire(const BenchWireArgs& args) {
  if (args.stages < 2) fail("--stages must be at least 2 (a boundary to cross), not {}", args.stages);
  if (args.prompts < 1 || args.decode_tokens < 1 || args.prompt_tokens < 1)
    fail("--prompts, --prompt-tokens and -n must be at least 1");
  const auto whole = ModelShard::load(args.model);
  const ModelConfig& config = whole->config();
  if (args.stages > config.n_layers) fail("--stages {} is more than the model's {} layers", args.stages, config.n_layers);
  std::vector<std::shared_ptr<const ModelShard>> shards;
  for (int s = 0; s < args.stages; ++s) {
    shards.push_back(ModelShard::load(args.model, LayerRange{s * config.n_layers / args.stages,
                                                             (s + 1) * config.n_layers / args.stages}));
  }
  const std::vector<std::vector<int32_t>> prompts = make_prompts(args, config.n_vocab);
  ThreadPool pool(std::max(1, args.threads));

  std::vector<std::vector<int32_t>> reference;
  nlohmann::json report = {{"model", args.model}, {"stages", args.stages}, {"prompts", prompts.size()},
                           {"decode_tokens", args.decode_tokens}, {"n_embd", config.n_embd}};
  nlohmann::json rows = nlohmann::json::array();
  for (WireDType dtype : {WireDType::F32, WireDType::F16, WireDType::BF16, WireDType::Q8}) {
    int differ = 0;
    int64_t same_tokens = 0, first_divergence_sum = 0;
    size_t frame_bytes = 0;
    for (size_t p = 0; p < prompts.size(); ++p) {
      const Continuation c = continue_greedy(shards, prompts[p], args.decode_tokens, dtype, pool);
      frame_bytes = c.decode_frame_bytes;
      if (dtype == WireDType::F32) {
        reference.push_back(c.tokens);
        continue;
      }
      const auto mismatch = std::mismatch(c.tokens.begin(), c.tokens.end(), reference[p].begin());
      const int64_t first = mismatch.first - c.tokens.begin();
      same_tokens += first;
      if (first < int64_t(c.tokens.size())) {
        ++differ;
        first_divergence_sum += first;
      }
    }
    const int64_t total = int64_t(prompts.size()) * args.decode_tokens;
    rows.push_back({{"dtype", swarm::wire::wire_dtype_name(dtype)},
                    {"bytes_per_token_per_boundary", frame_bytes},
                    {"hidden_bytes_per_token", swarm::wire::wire_row_bytes(dtype, config.n_embd)},
                    {"continuations_differing", differ},
                    {"tokens_before_first_difference", dtype == WireDType::F32 ? total : same_tokens},
                    {"mean_first_difference", differ ? double(first_divergence_sum) / differ : -1.0}});
  }
  report["dtypes"] = rows;
  if (args.json) {
    fmt::print("{}\n", report.dump());
    return;
  }
  fmt::print("{} stages, {} prompts, {} greedy tokens each, n_embd {}\n", args.stages, prompts.size(),
             args.decode_tokens, config.n_embd);
  fmt::print("{:<6} {:>12} {:>14} {:>22} {:>18}\n", "dtype", "frame B/tok", "hidden B/tok", "differ from f32", "first diff (mean)");
  for (const auto& r : rows) {
    fmt::print("{:<6} {:>12} {:>14} {:>15} of {:<4} {:>18}\n", r["dtype"].get<std::string>(),
               r["bytes_per_token_per_boundary"].get<size_t>(), r["hidden_bytes_per_token"].get<size_t>(),
               r["continuations_differing"].get<int>(), prompts.size(),
               r["mean_first_difference"].get<double>() < 0 ? std::string("-")
                                                              : fmt::format("{:.1f}", r["mean_first_difference"].get<double>()));
  }
}

}  // namespace

void register_bench_wire(CLI::App& app) {
  auto args = std::make_shared<BenchWireArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench-wire", "Bytes per token and greedy output changes of each wire dtype (f32, f16, bf16, q8) across stages");
  cmd->add_option("-m,--model", args->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--stages", args->stages, "Even stages to cut the model into")->capture_default_str();
  cmd->add_option("--prompts", args->prompts, "Prompts")->capture_default_str();
  cmd->add_option("-p,--prompt-tokens", args->prompt_tokens, "Random prompt length (without --prompts-file)")
      ->capture_default_str();
  cmd->add_option("--prompts-file", args->prompts_file, "Prompts, one per line (instead of random tokens)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-n,--decode-tokens", args->decode_tokens, "Greedy tokens per prompt")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Compute threads")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args] { run_bench_wire(*args); });
}

}  // namespace px::cli
