// `parallax model synth|quantize|convert|info|digest`: make, convert, inspect and identify model files.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "model/hf_export.h"
#include "model/model_convert.h"
#include "model/model_digest_cache.h"
#include "model/model_info.h"
#include "model/model_quantize.h"
#include "model/synth.h"
#include "model/weight_source.h"
#include "tokenizer/vocab.h"
#include "tokenizer/vocab_hf.h"

namespace px::cli {
namespace {

// The same random weights as the GGUF synth, written as a Hugging Face directory with the
// given tokenizer.json (its token count sets the vocabulary).
void write_synthetic_hf_directory(SynthSpec spec, const std::string& tokenizer_json, const std::string& dir) {
  if (tokenizer_json.empty()) fail("--format hf needs --tokenizer-json (the directory's tokenizer)");
  namespace fs = std::filesystem;
  const fs::path source = fs::is_directory(tokenizer_json) ? fs::path(tokenizer_json) : fs::path(tokenizer_json).parent_path();
  const Vocab vocab = load_hf_vocab(tokenizer_json);
  fs::create_directories(dir);
  const std::string vocab_gguf = dir + "/.vocab.gguf", model_gguf = dir + "/.model.gguf";
  GgufWriter writer;
  writer.set_string("general.architecture", spec.arch);
  write_vocab_gguf(vocab, writer);
  writer.write(vocab_gguf);
  spec.vocab_path = vocab_gguf;
  const DType weights = spec.type;
  spec.type = DType::F32;
  write_synthetic_model(spec, model_gguf);
  write_hf_model(*GgufFile::open(model_gguf), dir, weights);
  fs::remove(vocab_gguf);
  fs::remove(model_gguf);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    if (fs::exists(source / name)) fs::copy_file(source / name, fs::path(dir) / name, fs::copy_options::overwrite_existing);
  }
}

void register_synth(CLI::App& model) {
  struct Options {
    SynthSpec spec;
    std::string out, type = "f32", rope_scaling = "none", format = "gguf", tokenizer_json;
  };
  auto opts = std::make_shared<Options>();
  SynthSpec& s = opts->spec;
  auto* cmd = model.add_subcommand("synth", "write a small random-weight model (GGUF)");
  cmd->add_option("-o,--output", opts->out, "output .gguf path (a directory with --format hf)")->required();
  cmd->add_option("--format", opts->format, "gguf, or hf: config.json + model.safetensors + tokenizer.json")
      ->check(CLI::IsMember({"gguf", "hf"}))
      ->capture_default_str();
  cmd->add_option("--tokenizer-json", opts->tokenizer_json,
                  "with --format hf: the tokenizer.json (or its directory) to ship, which sets the vocabulary");
  cmd->add_option("--arch", s.arch, "architecture")
      ->check(CLI::IsMember({"llama", "qwen2", "qwen3"}))
      ->capture_default_str();
  cmd->add_option("--layers", s.n_layers, "transformer layers")->capture_default_str();
  cmd->add_option("--embd", s.n_embd, "embedding length")->capture_default_str();
  cmd->add_option("--heads", s.n_heads, "attention heads")->capture_default_str();
  cmd->add_option("--kv-heads", s.n_kv_heads, "key/value heads")->capture_default_str();
  cmd->add_option("--ff", s.n_ff, "feed-forward length")->capture_default_str();
  cmd->add_option("--head-dim", s.head_dim, "head dimension (0: embd / heads)")
      ->capture_default_str();
  cmd->add_option("--ctx", s.n_ctx, "context length")->capture_default_str();
  cmd->add_option("--rope-base", s.rope_base, "RoPE frequency base")->capture_default_str();
  cmd->add_option("--rms-eps", s.rms_eps, "RMS norm epsilon")->capture_default_str();
  cmd->add_flag("--tied", s.tied_embeddings, "tie the output head to the token embedding");
  cmd->add_option("--rope-scaling", opts->rope_scaling, "RoPE scaling (none|llama3)")
      ->check(CLI::IsMember({"none", "llama3"}))
      ->capture_default_str();
  cmd->add_option("--type", opts->type, "2-D weight type: f32 f16 bf16 q8_0 q4_0 q4_k q6_k")
      ->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed")->capture_default_str();
  cmd->add_option("--vocab", s.vocab_path, "GGUF file whose tokenizer.* keys are copied");
  cmd->add_option("--name", s.name, "general.name")->capture_default_str();
  cmd->callback([opts] {
    opts->spec.type = parse_dtype(opts->type);
    opts->spec.llama3_rope_scaling = opts->rope_scaling == "llama3";
    if (opts->format == "gguf") {
      write_synthetic_model(opts->spec, opts->out);
    } else {
      write_synthetic_hf_directory(opts->spec, opts->tokenizer_json, opts->out);
    }
    spdlog::info("wrote {}", opts->out);
  });
}

void register_quantize(CLI::App& model) {
  struct Options {
    std::string in, out, type;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = model.add_subcommand("quantize", "convert a model's weights to another type");
  cmd->add_option("input", opts->in, "input .gguf")->required();
  cmd->add_option("output", opts->out, "output .gguf")->required();
  cmd->add_option("--type", opts->type, "q8_0 q4_0 q4_k q6_k f16 bf16 f32")->required();
  cmd->callback([opts] { quantize_model(opts->in, opts->out, parse_dtype(opts->type)); });
}

void register_convert(CLI::App& model) {
  struct Options {
    std::string in, out, type = "f16";
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = model.add_subcommand("convert", "write a Hugging Face model directory as a GGUF file");
  cmd->add_option("input", opts->in, "directory with config.json, *.safetensors and tokenizer.json")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--output", opts->out, "output .gguf")->required();
  cmd->add_option("--type", opts->type, "q8_0 q4_0 q4_k q6_k f16 bf16 f32")->capture_default_str();
  cmd->callback([opts] {
    const DType type = parse_dtype(opts->type);
    const Vocab vocab = load_hf_vocab(opts->in);  // first: a bad tokenizer fails before any work
    write_gguf_model(*hf_weights(opts->in), opts->out, type,
                     [&](GgufWriter& writer) { write_vocab_gguf(vocab, writer); });
    spdlog::info("wrote {}", opts->out);
  });
}

void register_info(CLI::App& model) {
  struct Options {
    std::string file;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = model.add_subcommand("info", "describe a GGUF model file");
  cmd->add_option("file", opts->file, "model .gguf")->required();
  cmd->add_flag("--json", opts->json, "print JSON");
  cmd->callback([opts] {
    const auto file = GgufFile::open(opts->file);
    const std::string report =
        opts->json ? describe_model_json(*file).dump(2) + "\n" : describe_model(*file);
    std::fputs(report.c_str(), stdout);
  });
}

void print_digest(const DigestResult& r, bool json) {
  const ModelDigest& d = r.digest;
  if (json) {
    const nlohmann::json out = {{"id", d.id},
                                {"config", d.config},
                                {"layers", d.layers},
                                {"embedding_output", d.embedding_output},
                                {"from_cache", r.from_cache},
                                {"cache", r.cache_path},
                                {"hashed_bytes", r.run.bytes},
                                {"hashed_seconds", r.run.seconds},
                                {"threads", r.run.threads},
                                {"gb_per_second", r.run.seconds > 0 ? r.run.bytes / r.run.seconds / 1e9 : 0.0}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("id                {}\nconfig            {}\n", d.id, d.config);
  for (size_t i = 0; i < d.layers.size(); ++i) fmt::print("layer {:<11} {}\n", i, d.layers[i]);
  fmt::print("embedding/output  {}\n", d.embedding_output);
  if (r.from_cache) {
    fmt::print("from cache        {} (--no-cache hashes again)\n", r.cache_path);
  } else {
    const std::string size = r.run.bytes >= 1e9 ? fmt::format("{:.2f} GB", r.run.bytes / 1e9) : fmt::format("{:.1f} MB", r.run.bytes / 1e6);
    fmt::print("hashed            {} in {:.3f} s: {:.2f} GB/s ({} threads)\n", size, r.run.seconds,
               r.run.seconds > 0 ? r.run.bytes / r.run.seconds / 1e9 : 0.0, r.run.threads);
    if (!r.cache_path.empty()) fmt::print("cached in         {}\n", r.cache_path);
  }
}

void register_digest(CLI::App& model) {
  struct Options {
    std::string path;
    int threads = 0;
    bool no_cache = false, json = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = model.add_subcommand("digest", "print a model's SHA-256 identity: id, config and per-layer digests");
  cmd->add_option("model", opts->path, "GGUF file or Hugging Face model directory")->required()->check(CLI::ExistingPath);
  cmd->add_option("-t,--threads", opts->threads, "hashing threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--no-cache", opts->no_cache, "hash even when a cached digest matches the files (and refresh it)");
  cmd->add_flag("--json", opts->json, "print JSON");
  cmd->callback([opts] {
    ThreadPool pool(opts->threads);
    DigestOptions options;
    options.pool = &pool;
    options.use_cache = !opts->no_cache;
    print_digest(model_digest(opts->path, options), opts->json);
  });
}

}  // namespace

void register_model(CLI::App& app) {
  auto* model = app.add_subcommand("model", "make, convert, inspect and identify model files");
  model->require_subcommand(1);
  register_synth(*model);
  register_quantize(*model);
  register_convert(*model);
  register_info(*model);
  register_digest(*model);
}

}  // namespace px::cli
