// matmul throughput per weight type: GB/s of weight bytes streamed (n_tokens = 1 is
// bandwidth-bound decode; n_tokens = 128 is compute-bound prefill, also reported as GFLOP/s).
// Matmul/<type>/interleaved is the same matrix repacked into 16-row groups, as model loading
// does where the CPU has AVX-512 VNNI (kernels/cpu/interleaved.h).
//   ./build/bench/kernels_bench --benchmark_filter='Matmul/Q4_0'
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/interleaved.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"

namespace px {
namespace {

constexpr int64_t kRows = 1024;
constexpr int64_t kCols = 2816;

std::vector<float> pseudo_random(int64_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = (static_cast<float>(seed >> 8) / 16777216.0f - 0.5f) * 0.1f;
  }
  return v;
}

void BM_Matmul(benchmark::State& state, DType type, bool interleaved) {
  const int64_t n_tokens = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const size_t row_size = row_bytes(type, kCols);
  std::vector<uint8_t> weights(row_size * kRows);
  const auto source = pseudo_random(kRows * kCols, 1);
  for (int64_t r = 0; r < kRows; ++r) {
    quantize_row(type, source.data() + r * kCols, weights.data() + r * row_size, kCols);
  }
  const auto x = pseudo_random(n_tokens * kCols, 2);
  std::vector<float> y(n_tokens * kRows);
  ThreadPool pool(threads);
  std::vector<uint8_t> groups;
  if (interleaved) {
    groups.resize(kernels::interleaved_bytes(type, kRows, kCols));
    kernels::interleave_rows(type, weights.data(), kRows, kCols, groups.data());
  }
  const WeightView w{weights.data(), type, kRows, kCols, interleaved ? groups.data() : nullptr};
  for (auto _ : state) {
    matmul(w, x.data(), n_tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(weights.size()));
  state.counters["GFLOPS"] = benchmark::Counter(
      2.0 * kRows * kCols * n_tokens * state.iterations(), benchmark::Counter::kIsRate,
      benchmark::Counter::kIs1000);
  state.SetLabel(active_simd_target());
}

void register_all() {
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                     DType::Q6_K}) {
    for (bool interleaved : {false, true}) {
      if (interleaved && !kernels::interleave_pays_off(type)) continue;
      const std::string name =
          "Matmul/" + std::string(dtype_name(type)) + (interleaved ? "/interleaved" : "");
      benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, interleaved)
          ->ArgNames({"tokens", "threads"})
          ->ArgsProduct({{1, 128}, {1, 2}})
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace px

int main(int argc, char** argv) {
  px::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
