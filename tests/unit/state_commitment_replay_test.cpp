// Commitments to stage outputs checked by replaying the real forward pass, on synthetic llama and
// qwen2 models (qwen3 too with PX_REPLAY_ARCHS=all) in F32 / F16 / Q8_0 / Q4_0, the last three
// quantized from the F32 one by the project's quantizer. A worker computes its stage as a prompt
// then decode steps on 2 threads; a verifier replays the positions as one prefill.
//
// Honest variations, which must pass: 1 or 2 threads, one prefill or prefill in chunks, every
// SIMD target this CPU runs (another machine), and the second stage after an f32 / f16 / bf16
// wire (replayed from the very values that stage received). Dishonest ones, which must fail:
// another model (seed), another quantization, a skipped layer, noise added to the output, a
// changed prompt token (failing at that position). Each dishonest commitment is checked against
// every honest replay, so a verdict never depends on which verifier happened to look; verifiers
// on the worker's own SIMD target are also held to CommitmentThresholds::exact().
//
// MarginsPrinted prints the worst honest and best dishonest statistics per case, the figures of
// docs/VERIFICATION.md:
//   PX_REPLAY_PROMPTS=8 PX_REPLAY_ARCHS=all parallax_tests --gtest_filter='StateCommitmentReplay.*'
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "unit/force_target.h"
#include <fmt/format.h>

#include "unit/stage_replay.h"
#include "unit/test_temp_dir.h"

#include "core/fp16.h"
#include "kernels/cpu/simd.h"
#include "model/model_quantize.h"
#include "model/synth.h"
#include "runtime/stage_fault.h"
#include "runtime/state_commitment.h"

namespace px {
namespace {

using test::prompt_then_decode;
using test::run_stage;

constexpr LayerRange kFirst{0, 2}, kSecond{2, 4};  // of 6 layers: both return hidden states
constexpr int kPromptPart = 8;                     // the worker's prefill; decode steps after it
const std::vector<DType> kTypes = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0};
const std::vector<double> kNoise = {5e-4, 1e-3, 2e-3, 5e-3, 7e-3, 1e-2, 2e-2};
// The smallest noise every verifier must catch; a verifier on the worker's kernels (exact
// thresholds) must catch every size above.
constexpr double kReliableNoise = 1e-2;
const std::vector<int> kChangedPositions = {5, 40};

enum class Kind { Honest, Dishonest, Info };  // Info: measured and printed, not asserted

struct CheckRun {
  std::string group;  // "honest", "other model", ...: what the tests assert over
  std::string name;   // the case, as printed
  Kind kind;
  std::string where;  // arch, type, prompt, verifier
  CommitmentVerdict verdict;
  int expected_row = -1;  // changed token: the row that must fail first
  // With CommitmentThresholds::exact(), when the verifier ran the worker's kernels.
  std::optional<CommitmentVerdict> exact;
};

std::vector<int32_t> prompt(int which) {
  std::vector<int32_t> t;
  for (int i = 0; i < 64; ++i) t.push_back(1 + (i * (37 + 12 * which) + 11 * which) % 250);
  return t;
}

std::vector<float> wire(std::vector<float> v, const std::string& format) {
  if (format == "f16") for (float& x : v) x = fp16_to_f32(f32_to_fp16(x));
  if (format == "bf16") for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

std::string model_path(const std::string& arch, uint64_t seed, DType type) {
  return test::temp_dir() + fmt::format("replay_{}_{}_{}.gguf", arch, seed, dtype_name(type));
}

void write_models(const std::string& arch, uint64_t seed) {
  SynthSpec s;
  s.arch = arch;
  s.n_layers = 6;
  s.n_embd = 256;
  s.n_heads = 8;
  s.n_kv_heads = 2;
  s.n_ff = 512;
  s.n_ctx = 256;
  s.seed = seed;
  const std::string source = model_path(arch, seed, DType::F32);
  write_synthetic_model(s, source);
  for (DType t : kTypes) {
    if (t != DType::F32) quantize_model(source, model_path(arch, seed, t), t);
  }
}

std::shared_ptr<const ModelShard> shard(const std::string& arch, uint64_t seed, DType type, LayerRange range) {
  return ModelShard::load(model_path(arch, seed, type), range);
}

struct Replay {
  std::string name;
  std::vector<float> out;
  bool same_kernels;  // ran on the worker's SIMD target
};

// The honest verifier's replays of one stage from `input` (empty for the first stage).
std::vector<Replay> replays(const std::string& arch, DType type, LayerRange range, std::span<const int32_t> tokens,
                            std::span<const float> input) {
  const int n = int(tokens.size());
  auto s = shard(arch, 3, type, range);
  std::vector<Replay> r;
  r.push_back({"prefill, 1 thread", run_stage(s, tokens, input, {n}, 1), true});
  r.push_back({"prefill, 2 threads", run_stage(s, tokens, input, {n}, 2), true});
  r.push_back({"prefill in chunks 5+27+32", run_stage(s, tokens, input, {5, 27, n - 32}, 1), true});
  const std::vector<int64_t> targets = kernel_simd_targets();  // best first: the worker's
  for (int64_t target : targets) {
    ForceTarget force(target);
    r.push_back({fmt::format("prefill on {}", hwy::TargetName(target)),
                 run_stage(shard(arch, 3, type, range), tokens, input, {n}, 1), target == targets.front()});
  }
  return r;
}

class Calibration {
 public:
  std::vector<CheckRun> runs;

  Calibration() {
    // PX_REPLAY_PROMPTS widens the calibration (docs/VERIFICATION.md used 8); the suite uses 2.
    const char* env = std::getenv("PX_REPLAY_PROMPTS");
    const int prompts = env ? std::max(1, std::atoi(env)) : 2;
    const char* archs_env = std::getenv("PX_REPLAY_ARCHS");
    std::vector<std::string> archs = {"llama", "qwen2"};
    if (archs_env && std::string(archs_env) == "all") archs.push_back("qwen3");
    for (const std::string& arch : archs) {
      write_models(arch, 3);
      write_models(arch, 4);  // "another model"
      for (DType type : kTypes) {
        for (int p = 0; p < prompts; ++p) evaluate(arch, type, p);
      }
    }
  }

 private:
  // Checks `claimed` against every replay and records one run per replay.
  void record(const std::string& group, const std::string& name, Kind kind, const std::string& where,
              const std::vector<float>& claimed, const std::vector<Replay>& verifiers, int expected_row = -1) {
    const StateCommitment c = commit_states(claimed, 256);
    for (const Replay& v : verifiers) {
      CheckRun run{group, name, kind, where + ", verifier " + v.name, check_states(c, v.out), expected_row, {}};
      if (v.same_kernels) run.exact = check_states(c, v.out, CommitmentThresholds::exact());
      runs.push_back(std::move(run));
    }
  }

  void evaluate(const std::string& arch, DType type, int which) {
    const std::vector<int32_t> tokens = prompt(which);
    const int n = int(tokens.size());
    const auto decode = prompt_then_decode(kPromptPart, n);
    const std::string where = fmt::format("{} {} prompt {}", arch, dtype_name(type), which);
    auto first = shard(arch, 3, type, kFirst);
    auto second = shard(arch, 3, type, kSecond);

    // Stage 1: the worker's output and the verifier's replays.
    const std::vector<float> sent = run_stage(first, tokens, {}, decode, 2);
    const std::vector<Replay> first_replays = replays(arch, type, kFirst, tokens, {});
    for (const Replay& v : first_replays) {
      record("honest", "stage 1: " + v.name, Kind::Honest, where, sent, {v});
    }
    record("other model", "stage 1: another seed", Kind::Dishonest, where,
           run_stage(shard(arch, 4, type, kFirst), tokens, {}, decode, 2), first_replays);
    for (DType cheap : {DType::F16, DType::Q8_0, DType::Q4_0}) {
      if (cheap == type) continue;
      // An F16 copy of an F32 model differs by less than the honest noise of quantized models.
      const Kind kind = type == DType::F32 && cheap == DType::F16 ? Kind::Info : Kind::Dishonest;
      record("other quantization", fmt::format("stage 1: runs {} for {}", dtype_name(cheap), dtype_name(type)), kind,
             where, run_stage(shard(arch, 3, cheap, kFirst), tokens, {}, decode, 2), first_replays);
    }
    for (int layer = kFirst.begin; layer < kFirst.end; ++layer) {
      record("skipped layer", fmt::format("stage 1: skips layer {}", layer), Kind::Dishonest, where,
             run_stage(first, tokens, {}, decode, 2, layer), first_replays);
    }
    for (double scale : kNoise) {
      std::vector<float> noisy = sent;
      StageFault fault{StageFaultKind::Corrupt, scale, -1, 77};
      std::vector<int32_t> positions(n), seqs(n, 0);
      for (int i = 0; i < n; ++i) positions[i] = i;
      corrupt_rows(fault, noisy, 256, positions, seqs);
      record("perturbed", fmt::format("stage 1: noise {:g} x RMS", scale),
             scale >= kReliableNoise ? Kind::Dishonest : Kind::Info, where, noisy, first_replays);
    }
    for (int pos : kChangedPositions) {
      std::vector<int32_t> changed = tokens;
      changed[pos] = 1 + changed[pos] % 250;
      record("changed token", fmt::format("stage 1: prompt token {} changed", pos), Kind::Dishonest, where,
             run_stage(first, changed, {}, decode, 2), first_replays, pos);
    }

    // Stage 2, after each wire format: replayed from what it received.
    for (const std::string format : {"f32", "f16", "bf16"}) {
      const std::vector<float> received = wire(sent, format);
      const std::vector<float> out = run_stage(second, tokens, received, decode, 2);
      const std::vector<Replay> second_replays = replays(arch, type, kSecond, tokens, received);
      for (const Replay& v : second_replays) {
        record("honest", fmt::format("stage 2 ({} wire): {}", format, v.name), Kind::Honest, where, out, {v});
      }
      if (format != "f16") continue;
      record("other model", "stage 2: another seed", Kind::Dishonest, where,
             run_stage(shard(arch, 4, type, kSecond), tokens, received, decode, 2), second_replays);
      for (DType cheap : {DType::F16, DType::Q8_0, DType::Q4_0}) {
        if (cheap == type) continue;
        const Kind kind = type == DType::F32 && cheap == DType::F16 ? Kind::Info : Kind::Dishonest;
        record("other quantization", fmt::format("stage 2: runs {} for {}", dtype_name(cheap), dtype_name(type)), kind,
               where, run_stage(shard(arch, 3, cheap, kSecond), tokens, received, decode, 2), second_replays);
      }
      for (int layer = kSecond.begin; layer < kSecond.end; ++layer) {
        record("skipped layer", fmt::format("stage 2: skips layer {}", layer), Kind::Dishonest, where,
               run_stage(second, tokens, received, decode, 2, layer), second_replays);
      }
      // Not supported: a verifier that rounds its own stage-1 replay instead of using the bytes
      // stage 2 received (a near-tie rounds the other way and quantized models amplify it).
      for (const Replay& upstream : first_replays) {
        const std::vector<float> own = run_stage(second, tokens, wire(upstream.out, format), {n}, 1);
        record("own upstream", "stage 2 (f16 wire) replayed from the verifier's own stage 1", Kind::Info,
               where + ", upstream " + upstream.name, out, {{"prefill, 1 thread", own, false}});
      }
    }
  }
};

const Calibration& calibration() {
  static const Calibration c;
  return c;
}

// Every run of the group passes (or fails) with the default thresholds, Info runs aside; and
// with the exact thresholds wherever the verifier ran the worker's kernels, Info runs included.
void expect_group(const std::string& group, bool pass) {
  int seen = 0, exact = 0;
  for (const CheckRun& r : calibration().runs) {
    if (r.group != group) continue;
    const std::string what = r.name + " (" + r.where + ")";
    if (r.kind != Kind::Info) {
      ++seen;
      EXPECT_EQ(r.verdict.ok, pass) << what << ": " << r.verdict.reason << " max row error " << r.verdict.max_row_error
                                    << " window median " << r.verdict.max_window_median;
      if (r.expected_row >= 0) {
        EXPECT_EQ(r.verdict.first_failing_row, r.expected_row) << what;
      }
    }
    if (r.exact) {
      ++exact;
      EXPECT_EQ(r.exact->ok, pass) << what << " with exact thresholds: " << r.exact->reason;
      if (r.expected_row >= 0) {
        EXPECT_EQ(r.exact->first_failing_row, r.expected_row) << what;
      }
    }
  }
  EXPECT_GT(seen, 0) << group;
  EXPECT_GT(exact, 0) << group;
}

TEST(StateCommitmentReplay, HonestVariationsPass) { expect_group("honest", true); }
TEST(StateCommitmentReplay, AnotherModelFails) { expect_group("other model", false); }
TEST(StateCommitmentReplay, AnotherQuantizationFails) { expect_group("other quantization", false); }
TEST(StateCommitmentReplay, SkippedLayerFails) { expect_group("skipped layer", false); }
TEST(StateCommitmentReplay, PerturbedOutputFails) { expect_group("perturbed", false); }
TEST(StateCommitmentReplay, ChangedPromptTokenFailsAtItsPosition) { expect_group("changed token", false); }

// Per case: honest ones by their worst (largest) statistics, dishonest ones by their best
// (smallest), i.e. the run closest to passing; how many runs failed with the default thresholds,
// and with the exact ones among the verifiers that ran the worker's kernels.
TEST(StateCommitmentReplay, MarginsPrinted) {
  struct Row {
    Kind kind;
    double row_error, window_median;
    int runs = 0, failed = 0, exact_runs = 0, exact_failed = 0;
  };
  std::map<std::string, Row> table;
  std::vector<std::string> order;
  for (const CheckRun& r : calibration().runs) {
    auto [it, fresh] = table.try_emplace(r.name, Row{r.kind, r.verdict.max_row_error, r.verdict.max_window_median});
    if (fresh) order.push_back(r.name);
    Row& row = it->second;
    const bool worst_is_max = r.kind == Kind::Honest || r.group == "own upstream";
    const auto pick = [&](double a, double b) { return worst_is_max ? std::max(a, b) : std::min(a, b); };
    row.row_error = pick(row.row_error, r.verdict.max_row_error);
    row.window_median = pick(row.window_median, r.verdict.max_window_median);
    ++row.runs;
    row.failed += !r.verdict.ok;
    if (r.exact) {
      ++row.exact_runs;
      row.exact_failed += !r.exact->ok;
    }
  }
  const CommitmentThresholds t;
  std::printf("thresholds: row error %g, window median %g (windows of %d rows)\n", t.row_error, t.window_median,
              t.window_rows);
  std::printf("%-58s %-9s %10s %10s %12s %12s\n", "case", "kind", "row error", "win median", "failed",
              "exact failed");
  for (const std::string& name : order) {
    const Row& row = table[name];
    const char* kind = row.kind == Kind::Honest ? "honest" : row.kind == Kind::Dishonest ? "dishonest" : "info";
    std::printf("%-58s %-9s %10.3g %10.3g %5d / %-5d %5d / %-5d\n", name.c_str(), kind, row.row_error,
                row.window_median, row.failed, row.runs, row.exact_failed, row.exact_runs);
  }
}

}  // namespace
}  // namespace px
